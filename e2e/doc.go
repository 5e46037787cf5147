// Package e2e drives Intake the way an operator and a client would: the
// control API and the four workers run as separate OS processes against a
// real nats-server process and PostgreSQL, and the test talks gRPC only.
package e2e
