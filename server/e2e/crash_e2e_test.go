//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestKilledMidLoadLosesNoAuditedCall runs the real binary under load,
// kills it with SIGKILL, and checks that every call that returned a
// result has its audit record and that the chain still verifies.
func TestKilledMidLoadLosesNoAuditedCall(t *testing.T) {
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.log")
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := "audit:\n  path: " + auditPath + "\n  sync: every\n" +
		"rateLimits:\n  classes:\n    default: {unlimited: true}\n    high: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--demo", "--config", cfgPath, "--http", addr)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	var mu sync.Mutex
	var answered []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		c, err := client.NewStreamableHttpClient(base + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		servertest.Connect(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				probe := fmt.Sprintf("probe%dx%d", w, i)
				req := mcp.CallToolRequest{}
				req.Params.Name = "catalog_search_entities"
				req.Params.Arguments = json.RawMessage(`{"text":"` + probe + `","limit":1}`)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := c.CallTool(ctx, req)
				cancel()
				if err != nil {
					return // the server is gone
				}
				if !res.IsError {
					mu.Lock()
					answered = append(answered, probe)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(answered) < 20 {
		t.Fatalf("only %d calls answered before the kill; the load was too light to prove anything", len(answered))
	}
	data, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, p := range answered {
		if !strings.Contains(log, `"text":"`+p+`"`) {
			t.Errorf("call %s returned a result but has no audit record", p)
		}
	}
	out, err := exec.Command(binary, "audit", "verify", auditPath).CombinedOutput()
	if err != nil {
		t.Fatalf("audit verify after SIGKILL: %v\n%s", err, out)
	}
	t.Logf("%d answered calls, all audited; verify: %s", len(answered), strings.SplitN(string(out), "\n", 2)[0])
}
