package gateway_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDependencyDirection enforces the layering of DESIGN.md: the core
// depends on nothing at the edge, and only gateway/policy embeds OPA.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/dgwproject/dgw/gateway/...").Output()
	require.NoError(t, err)
	const mod = "github.com/dgwproject/dgw/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			assert.False(t, strings.HasPrefix(imp, mod+"adapters/") || strings.HasPrefix(imp, mod+"cmd/"),
				"%s imports %s: the core never imports adapters or cmd", pkg, imp)
			assert.False(t, strings.HasPrefix(imp, "github.com/segmentio/kafka-go") || strings.HasPrefix(imp, "github.com/twmb/franz-go"),
				"%s imports %s: Kafka belongs in adapters/kafka", pkg, imp)
			assert.False(t, strings.HasPrefix(imp, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(imp, "go.opentelemetry.io/otel/exporters"),
				"%s imports %s: the core uses the OpenTelemetry API only", pkg, imp)
			if strings.HasPrefix(imp, "github.com/open-policy-agent/opa") {
				assert.True(t, pkg == mod+"gateway/policy" || strings.HasPrefix(pkg, mod+"gateway/policy/"),
					"only gateway/policy (and its planeval) may import OPA, %s imports %s", pkg, imp)
			}
		}
		if pkg == mod+"gateway" {
			for _, imp := range imports {
				otelAPI := strings.HasPrefix(imp, "go.opentelemetry.io/otel/") && !strings.Contains(imp, "/sdk") && !strings.Contains(imp, "/exporters")
				assert.True(t, !strings.Contains(imp, ".") || otelAPI,
					"the gateway package imports only the standard library and the OpenTelemetry API, got %s", imp)
			}
		}
	}
}
