// Verify a mailhook webhook signature (Standard Webhooks), Go standard library only.
//
//	Usage: WEBHOOK_SECRET=whsec_... WEBHOOK_ID=... WEBHOOK_TIMESTAMP=... \
//	       WEBHOOK_SIGNATURE=... go run verify.go < body.json
//
// The body on stdin must be the exact bytes received. Exit 0: valid; 1: invalid;
// 2: usage. In a receiver, call Verify with r.Header.Get("webhook-id"), ... and
// the body read with io.ReadAll(r.Body).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks: reject timestamps further than 5 minutes away.
const tolerance = 5 * time.Minute

// Verify reports whether one of the signatures in signatureHeader is the
// HMAC-SHA256 of "<id>.<timestamp>.<body>" under secret, and the timestamp is
// within the tolerance of now.
func Verify(secret, id, timestamp, signatureHeader string, body []byte, now time.Time) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	key, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimPrefix(secret, "whsec_"), "="))
	if err != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	// Several space-separated "v1,<base64>" while the sender rotates secrets.
	for _, candidate := range strings.Fields(signatureHeader) {
		version, sig, ok := strings.Cut(candidate, ",")
		if !ok || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(given, expected) {
			return true
		}
	}
	return false
}

func main() {
	names := []string{"WEBHOOK_SECRET", "WEBHOOK_ID", "WEBHOOK_TIMESTAMP", "WEBHOOK_SIGNATURE"}
	values := map[string]string{}
	for _, n := range names {
		v, ok := os.LookupEnv(n)
		if !ok {
			fmt.Fprintf(os.Stderr, "usage: set %s (see the comment at the top)\n", n)
			os.Exit(2)
		}
		values[n] = v
	}
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the body from stdin:", err)
		os.Exit(2)
	}
	if Verify(values["WEBHOOK_SECRET"], values["WEBHOOK_ID"], values["WEBHOOK_TIMESTAMP"], values["WEBHOOK_SIGNATURE"], body, time.Now()) {
		fmt.Println("verified " + values["WEBHOOK_ID"])
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "invalid signature or timestamp")
	os.Exit(1)
}
