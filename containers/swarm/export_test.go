package swarm

// UseJobs makes e run steps as replicated jobs whatever its Docker version,
// so that the tests cover the job path on engines that would use one-shot
// services (older than Docker 24, where each job leaves its task behind).
func UseJobs(e *Engine) { e.jobs = true }

// UsesJobs reports whether e runs steps as replicated jobs.
func UsesJobs(e *Engine) bool { return e.jobs }
