// Command flood is the attacker of the e2e attack suite's ingress flood:
// it posts one large message to an MCP endpoint from several senders in a
// loop for a fixed time and prints how the server answered, as JSON
// ({"429": n, "200": n, "0": n} with 0 for a transport error). It runs as
// its own process so that the suite can give it a CPU of its own, as an
// attacker on another machine would have, and measure the server's cost
// rather than the attacker's.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
	session := flag.String("session", "", "Mcp-Session-Id to send")
	size := flag.Int("size", 900<<10, "message size in bytes (at least)")
	senders := flag.Int("senders", 6, "concurrent senders")
	dur := flag.Duration("for", 3*time.Second, "how long to send")
	spin := flag.Bool("spin", false, "send nothing: only keep the senders busy on the CPU for the same time (the baseline that takes the same CPU from the machine)")
	flag.Parse()
	if *spin {
		spinFor(*senders, *dur)
		fmt.Println("{}")
		return
	}
	token := os.Getenv("FLOOD_TOKEN")
	if *url == "" || token == "" {
		fmt.Fprintln(os.Stderr, "flood: -url and FLOOD_TOKEN in the environment are required")
		os.Exit(2)
	}
	body := message(*size)
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for range *senders {
		wg.Go(func() {
			for ctx.Err() == nil {
				code := post(hc, *url, token, *session, body)
				mu.Lock()
				codes[strconv.Itoa(code)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(codes); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

// spinFor keeps n goroutines busy for d without any I/O.
func spinFor(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			x := uint64(1)
			for time.Now().Before(deadline) {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		})
	}
	wg.Wait()
}

// message is a ping whose _meta holds many "password=…" pairs: the most
// expensive text for ingress redaction to scan, if it were ever read.
func message(size int) string {
	var sb strings.Builder
	sb.WriteString(`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{`)
	for i := 0; sb.Len() < size; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"k%d":"%s"`, i, strings.Repeat("password=Xy7kQ2mZ9pLw3 ", 60<<10/24))
	}
	sb.WriteString(`}}}`)
	return sb.String()
}

func post(hc *http.Client, url, token, session, body string) int {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode
}
