// Package deploy holds no code: it is the home of fieldvault's deployment
// files (the container image, docker compose, Kubernetes manifests,
// Prometheus rules, Grafana provisioning, the Vault setup) and of the tests
// that validate them (deploy_test.go). See README.md in this directory.
package deploy
