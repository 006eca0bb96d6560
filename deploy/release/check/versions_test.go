package check

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// imageRepo is where the release publishes the image.
const imageRepo = "ghcr.io/backstage-mcp/backstage-mcp"

func chartAppVersion(t *testing.T) string {
	t.Helper()
	var c struct {
		AppVersion string `json:"appVersion"`
		Home       string `json:"home"`
	}
	if err := yaml.Unmarshal(readFile(t, chartPath), &c); err != nil {
		t.Fatal(err)
	}
	if c.Home != projectURL {
		t.Errorf("Chart.yaml home %q, want %s", c.Home, projectURL)
	}
	return c.AppVersion
}

func serverJSONVersion(t *testing.T) (version string, ociIdentifiers []string) {
	t.Helper()
	var s struct {
		Version  string `json:"version"`
		Packages []struct {
			RegistryType string `json:"registryType"`
			Identifier   string `json:"identifier"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(readFile(t, serverJSONPath), &s); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Packages {
		if p.RegistryType == "oci" {
			ociIdentifiers = append(ociIdentifiers, p.Identifier)
		}
	}
	return s.Version, ociIdentifiers
}

// TestOneVersion: server.json, its image tags, the bundle manifest and the
// chart's appVersion name one version. On a release, goreleaser's before
// hook sets RELEASE_VERSION to the tag's version, which must be that one,
// with its own section in CHANGELOG.md: a tag whose files were not bumped
// stops the release before anything is built.
func TestOneVersion(t *testing.T) {
	v, oci := serverJSONVersion(t)
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(v) {
		t.Fatalf("server.json version %q is not a semantic version", v)
	}
	if app := chartAppVersion(t); app != v {
		t.Errorf("Chart.yaml appVersion %q, server.json version %q: bump both", app, v)
	}
	if m := readManifest(t, manifestPath); m.Version != v {
		t.Errorf("deploy/mcpb/manifest.json version %q, server.json version %q: bump both", m.Version, v)
	}
	for _, id := range oci {
		if id != imageRepo+":"+v {
			t.Errorf("server.json image %q, want %s:%s", id, imageRepo, v)
		}
	}
	rel, ok := os.LookupEnv("RELEASE_VERSION")
	if !ok {
		t.Logf("one version: %s (set RELEASE_VERSION to check it against a tag)", v)
		return
	}
	if rel != v {
		t.Fatalf("releasing %s, but server.json, Chart.yaml appVersion and deploy/mcpb/manifest.json say %s: bump them (and CHANGELOG.md) before tagging", rel, v)
	}
	if !strings.Contains(string(readFile(t, changelogPath)), "## ["+v+"]") {
		t.Fatalf("CHANGELOG.md has no \"## [%s]\" section: move the Unreleased entries under it before tagging", v)
	}
	t.Logf("release %s: server.json, image tags, bundle manifest, chart appVersion and CHANGELOG.md agree", v)
}

var imageRepoDefault = regexp.MustCompile(`envOrDefault "IMAGE_REPO" "([^"]+)"`)

// TestOneImageName: the image the release pushes by default is the one the
// chart deploys, server.json advertises and the README names.
func TestOneImageName(t *testing.T) {
	g := string(readFile(t, goreleaserPath))
	ms := imageRepoDefault.FindAllStringSubmatch(g, -1)
	if len(ms) < 3 {
		t.Fatalf(".goreleaser.yaml names IMAGE_REPO's default %d times, want every image template to", len(ms))
	}
	for _, m := range ms {
		if m[1] != imageRepo {
			t.Errorf(".goreleaser.yaml IMAGE_REPO default %q, want %s", m[1], imageRepo)
		}
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	if err := yaml.Unmarshal(readFile(t, valuesPath), &values); err != nil {
		t.Fatal(err)
	}
	if values.Image.Repository != imageRepo || values.Image.Tag != "" {
		t.Errorf("values.yaml image %s:%q, want %s with the tag left to the chart's appVersion", values.Image.Repository, values.Image.Tag, imageRepo)
	}
	_, oci := serverJSONVersion(t)
	for _, id := range oci {
		if repo, _, _ := strings.Cut(id, ":"); repo != imageRepo {
			t.Errorf("server.json image %q, want %s", id, imageRepo)
		}
	}
	// The deployment guide: the README's Deploying section, or
	// docs/deploying.md where the README points to it.
	guide := string(readFile(t, root+"/README.md"))
	if b, err := os.ReadFile(root + "/docs/deploying.md"); err == nil {
		guide += string(b)
	}
	if !strings.Contains(guide, imageRepo+":") {
		t.Errorf("neither README.md nor docs/deploying.md names the published image %s:<version>", imageRepo)
	}
	// The registry accepts an OCI package only when the image names the
	// server in this label.
	for _, f := range []string{root + "/deploy/image/Containerfile", root + "/Dockerfile"} {
		if !strings.Contains(string(readFile(t, f)), `io.modelcontextprotocol.server.name="`+serverName+`"`) {
			t.Errorf("%s lacks the label io.modelcontextprotocol.server.name=%q the registry verifies", f, serverName)
		}
	}
}
