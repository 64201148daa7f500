package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// shippedWith is the shipped policy directory with extra files.
func shippedWith(extra map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	for name, content := range extra {
		m[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return m
}

// A new revision with a syntax error is rejected with its file and line;
// the first revision keeps deciding.
func ExampleNewLive() {
	ctx := context.Background()
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	live, err := policy.NewLive(ctx, policies.FS, policy.WithCatalogue(set.Catalogue()))
	if err != nil {
		log.Fatal(err)
	}
	first := live.Revision()
	err = live.Load(ctx, shippedWith(map[string]string{"broken.rego": "package dgw\n\nallow if {\n"}), "example")
	var pe *policy.ProblemsError
	if !errors.As(err, &pe) {
		log.Fatal(err)
	}
	for _, p := range pe.Problems {
		fmt.Println("rejected:", p)
	}
	fmt.Println("first revision still serving:", live.Revision() == first)
	// Output:
	// rejected: broken.rego:4: rego_parse_error: unexpected eof token
	// first revision still serving: true
}

// Watch polls an OPA bundle URL: the first revision comes from the bundle,
// a later bundle that does not compile is rejected and reported. (The
// policy here is a one-recipient toy, so that the example runs fast.)
func ExampleLive_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var served atomic.Pointer[[]byte] // the bundle the server publishes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(*served.Load())
	}))
	defer srv.Close()
	first := bundleFrom(tinyPolicy(tinyMasked))
	served.Store(&first)

	fsys, err := policy.FetchBundle(ctx, srv.Client(), srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	live, err := policy.NewLive(ctx, fsys, policy.WithCatalogue(tinyCatalogue))
	if err != nil {
		log.Fatal(err)
	}
	broken := bundleFrom(tinyPolicy(tinyMasked, "broken.rego", "package dgw\n\nallow if {\n"))
	served.Store(&broken)
	reports := make(chan policy.Reload, 1)
	go func() {
		_ = live.Watch(ctx, policy.WatchBundle(srv.URL, nil), policy.WithPollInterval(10*time.Millisecond),
			policy.WithReloadObserver(func(r policy.Reload) { reports <- r }))
	}()
	r := <-reports
	fmt.Println("activated:", r.Activated, "origin is the URL:", r.Origin == "bundle "+srv.URL)
	fmt.Println("problem:", r.Problems[0])
	// Output:
	// activated: false origin is the URL: true
	// problem: broken.rego:4: rego_parse_error: unexpected eof token
}

// bundleFrom builds a bundle of a policy directory as `opa build DIR` does:
// the modules, and the data files merged into one data tree.
func bundleFrom(files fstest.MapFS) []byte {
	b := bundle.Bundle{Data: map[string]any{}}
	data := map[string]any{}
	for name, f := range files {
		switch {
		case strings.HasSuffix(name, ".rego"):
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: f.Data})
		case strings.HasPrefix(name, "data/") && strings.HasSuffix(name, ".json"):
			var doc map[string]any
			if err := json.Unmarshal(f.Data, &doc); err != nil {
				log.Fatal(err)
			}
			maps.Copy(data, doc)
		}
	}
	b.Data["data"] = data
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

// A shared secret file verifies HS256-signed bundles.
func ExampleLoadBundleKey() {
	dir, err := os.MkdirTemp("", "dgw-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "bundle.key")
	if err := os.WriteFile(file, []byte("a long random shared secret\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	key, err := policy.LoadBundleKey(file, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Algorithm)
	// Output: HS256
}
