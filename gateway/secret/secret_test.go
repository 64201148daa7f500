package secret_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/secret"
)

func TestDecode(t *testing.T) {
	raw := strings.Repeat("k", 32)
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"raw", raw, raw, ""},
		{"base64", "base64:" + "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", raw, ""},
		{"hex", "hex:" + strings.Repeat("6b", 32), raw, ""},
		{"short raw", "short-canary-secret", "", "secret too short: 19 bytes, need at least 32"},
		{"bad base64", "base64:!!canary!!", "", "secret is not valid base64"},
		{"bad hex", "hex:zzcanary", "", "secret is not valid hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secret.Decode(tt.in, 32)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
				assert.NotContains(t, err.Error(), "canary", "errors never quote the secret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
	_, err := secret.Decode("x", 32)
	assert.ErrorIs(t, err, secret.ErrTooShort)
}
