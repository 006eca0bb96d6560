// Package image tests the container image (build tag image; run it with
// `make image`): deploy/image/build.sh builds it FROM scratch with buildah,
// the test checks its configuration and its every file, and, where this
// machine can run containers with podman, starts it with the demo catalog
// and calls a tool through it.
package image
