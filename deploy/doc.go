// Package deploy holds the files that deploy the service: the container
// image (Dockerfile), a production-shaped compose stack, NATS cluster
// configurations, Prometheus scrape configuration and alert rules, a Grafana
// dashboard, and Kubernetes manifests. It has no code; its tests check that
// every file parses in the format of the tool that reads it and agrees with
// the service: its roles, ports, flags, probes and metric names.
package deploy
