// Command noop is a benchmark guest that runs no step: what `wflow run`
// costs by itself.
package main

func main() {}
