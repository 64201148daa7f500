package policy

import (
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// TestInputProjection: the analysis finds every part of the input a rule
// can reach, and gives up (the whole input or part) where a reference is
// computed.
func TestInputProjection(t *testing.T) {
	tests := []struct {
		name string
		rego string
		want string
	}{
		{"members", "p if input.event.type == \"x\"\nq if input.subject.minor", "event.type subject.minor"},
		{"deeper", "p if input.subject.consents.health_data", "subject.consents"},
		{"iterated member", "p if input.subject.consents[_] == true", "subject.consents"},
		{"computed member", "p if input.event[_] == 1", "event"},
		{"whole part", "p := input.schema", "schema"},
		{"whole input", "p := input", "all"},
		{"computed part", "p if input[_]", "all"},
		{"builtin on input", "p := object.get(input, [\"event\", \"type\"], null)", "all"},
		{"rule head", "p contains input.event.purpose if true", "event.purpose"},
		{"rule head key", "p[input.event.point_of_sale] := 1", "event.point_of_sale"},
		{"else branch", "p := 1 if false\n\nelse := input.subject.citizenship", "subject.citizenship"},
		{"function", "f(x) := input.event.route[x]\n\np := f(0)", "event.route"},
		{"comprehension", "p := {c | some c in input.event.route}", "event.route"},
		{"with", "q if input.event.type == \"a\"\n\np if q with input.event.purpose as \"b\"", "event.purpose event.type"},
		{"nested reference", "p := data.x[input.event.type]", "event.type"},
		{"every", "p if every c in input.event.route { c != input.subject.residence }", "event.route subject.residence"},
		{"none", "p := 1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, problems := compile(map[string]*ast.Module{"p.rego": ast.MustParseModuleWithOpts("package t\n\n"+tt.rego+"\n",
				ast.ParserOptions{RegoVersion: ast.RegoV1})}, false)
			require.Empty(t, problems)
			assert.Equal(t, tt.want, inputProjection(c).String())
		})
	}
}

// TestProjectionKey: the cache key changes with every member of the
// context the policy reads, and only with those; a policy reading the
// whole input keys everything. Members are enumerated by reflection, so a
// member added to gateway.DecisionContext is covered without editing this
// test.
func TestProjectionKey(t *testing.T) {
	shipped, problems := read(policies.FS)
	require.Empty(t, problems)
	c, problems := compile(shipped.policy, false)
	require.Empty(t, problems)
	real := inputProjection(c)
	require.False(t, real.all, "the shipped policy names the input parts it reads")
	whole := &projection{all: true}

	base := gateway.DecisionContext{
		Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: "KZ", OriginCountry: "KZ",
			DestinationCountry: "DE", Route: []string{"KZ", "DE"}, BookingChannel: "website", AgencyCode: "1",
			CorporateAccount: "C"},
		Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{"survey": true},
			Objections: []string{"campaign"}},
		Schema: gateway.SchemaContext{Name: "dgw.events.Booking"},
	}
	unread := map[string]bool{"event.booking_channel": true, "subject.citizenship": true, "schema.name": true}
	members := 0
	forEachMember(t, func(path string, mutate func(*gateway.DecisionContext)) {
		members++
		changed := base
		changed.Event.Route = append([]string(nil), base.Event.Route...)
		changed.Subject.Objections = append([]string(nil), base.Subject.Objections...)
		changed.Subject.Consents = map[string]bool{"survey": true}
		mutate(&changed)
		assert.NotEqual(t, whole.key(&base), whole.key(&changed), "%s: the whole-input key must change", path)
		if unread[path] {
			assert.Equal(t, real.key(&base), real.key(&changed), "%s is not read by the shipped policy", path)
		} else {
			assert.NotEqual(t, real.key(&base), real.key(&changed), "%s is read by the shipped policy: the key must change", path)
		}
	})
	assert.GreaterOrEqual(t, members, 17)

	empty := gateway.DecisionContext{}
	normal := gateway.DecisionContext{Event: gateway.EventContext{Route: []string{}},
		Subject: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}}
	assert.Equal(t, real.key(&normal), real.key(&empty), "nil and empty collections look alike to the policy")
	assert.Nil(t, empty.Event.Route, "the key leaves the context alone")
}

// forEachMember calls fn for every member of a decision context (two
// levels of JSON names) with a mutation that changes it.
func forEachMember(t *testing.T, fn func(path string, mutate func(*gateway.DecisionContext))) {
	t.Helper()
	ct := reflect.TypeFor[gateway.DecisionContext]()
	for i := range ct.NumField() {
		part, ok := jsonName(ct.Field(i))
		require.True(t, ok)
		pt := ct.Field(i).Type
		require.Equal(t, reflect.Struct, pt.Kind(), "%s: context parts are structs", part)
		for j := range pt.NumField() {
			member, ok := jsonName(pt.Field(j))
			require.True(t, ok)
			fn(part+"."+member, func(dc *gateway.DecisionContext) {
				f := reflect.ValueOf(dc).Elem().Field(i).Field(j)
				switch f.Kind() {
				case reflect.String:
					f.SetString(f.String() + "x")
				case reflect.Bool:
					f.SetBool(!f.Bool())
				case reflect.Slice:
					f.Set(reflect.Append(f, reflect.ValueOf("XX")))
				case reflect.Map:
					f.SetMapIndex(reflect.ValueOf("other"), reflect.ValueOf(true))
				default:
					t.Fatalf("%s.%s: no mutation for kind %s", part, member, f.Kind())
				}
			})
		}
	}
}

// TestMemberNames: the key's member table is the context's members, in
// order.
func TestMemberNames(t *testing.T) {
	assert.Equal(t, contextMembers(), memberNames[:])
}
