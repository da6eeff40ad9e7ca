// A module of its own so that the project's `go build ./...` never pulls in
// Kubernetes; lab/toolchain.sh adds the pinned requirements in its build copy.
module fastapi-infra/lab/controlplane

go 1.26
