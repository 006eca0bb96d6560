// Package image tests the container image (build tag image; run it with
// `make image`): deploy/image/build.sh builds it FROM scratch with buildah,
// the test checks its configuration and its every file, and starts it with
// podman (with --ulimit values the sandbox allows; see podmanAttempts), or
// failing that buildah run, with the demo catalog and calls a tool through
// it. When neither can start it, the output says why.
package image
