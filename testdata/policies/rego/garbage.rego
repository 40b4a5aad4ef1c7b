# A policy whose wflow/decision is not an object.
package wflow

decision := "yes, go ahead"
