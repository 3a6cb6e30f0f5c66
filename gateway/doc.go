// Package gateway is the service's one public entry point: it verifies each
// caller's bearer token, sets X-User-ID from the token's subject, limits each
// user's request rate and each client address's failed authentications,
// refuses what the services would refuse but a proxy would alter (a malformed
// query string) or cannot read (a compressed body), and passes writes to
// dispatchers and reads to query instances, choosing among the healthy ones.
package gateway
