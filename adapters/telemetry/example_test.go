package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dgwproject/dgw/adapters/telemetry"
)

// ExampleSetup builds the providers, records a delivery as the gateway does,
// and reads it back from the admin server's /metrics.
func ExampleSetup() {
	ctx := context.Background()
	p, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "dgw"})
	if err != nil {
		fmt.Println("setup:", err)
		return
	}
	defer func() {
		if err := p.Shutdown(ctx); err != nil {
			fmt.Println("shutdown:", err)
		}
	}()

	deliveries, err := p.Meter.Meter("github.com/dgwproject/dgw/gateway").Int64Counter("dgw.deliveries",
		metric.WithDescription("Per-recipient outcomes: delivered, refused or held."))
	if err != nil {
		fmt.Println("counter:", err)
		return
	}
	deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("recipient", "border-kz"), attribute.String("outcome", "delivered")))

	admin := telemetry.NewAdmin("127.0.0.1:0", p.Metrics, func() (bool, string) { return false, "policy not loaded" })
	addr, err := admin.Start()
	if err != nil {
		fmt.Println("admin:", err)
		return
	}
	defer func() {
		if err := admin.Shutdown(ctx); err != nil {
			fmt.Println("admin shutdown:", err)
		}
	}()

	for _, path := range []string{"/metrics", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			fmt.Println("get:", err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "dgw_") || path == "/readyz" && line != "" {
				fmt.Println(resp.StatusCode, line)
			}
		}
	}
	// Output:
	// 200 dgw_deliveries_total{otel_scope_name="github.com/dgwproject/dgw/gateway",otel_scope_schema_url="",otel_scope_version="",outcome="delivered",recipient="border-kz"} 1
	// 503 policy not loaded
}
