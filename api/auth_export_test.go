package api

// HasAccessRule reports whether a method (its full name,
// "/intake.v1.JobService/GetJob") has an entry in the access table.
func HasAccessRule(method string) bool {
	_, ok := methodRules[method]
	return ok
}
