package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/aetherai/aether", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0f511c0abc"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	cases := map[string]struct {
		bi           *debug.BuildInfo
		ldVer, ldRev string
		want         Info
	}{
		"vcs stamp, dirty tree": {vcs, "", "", Info{"v1.4.0", "0f511c0abc-dirty", "go1.26.8"}},
		"link-time values win":  {vcs, "v2.0.0", "feedbeef", Info{"v2.0.0", "feedbeef", "go1.26.8"}},
		"no vcs stamp": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"", "", Info{"(devel)", Unknown, "go1.26.8"}},
		"no build info": {nil, "", "", Info{Unknown, Unknown, runtime.Version()}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, c.want, fromBuildInfo(c.bi, c.ldVer, c.ldRev))
		})
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, Register(reg))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	mf := mfs[0]
	assert.Equal(t, MetricName, mf.GetName())
	require.Len(t, mf.GetMetric(), 1)
	m := mf.GetMetric()[0]
	assert.Equal(t, 1.0, m.GetGauge().GetValue())
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	info := Read()
	assert.Equal(t, map[string]string{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion}, labels)
	assert.True(t, strings.HasPrefix(labels["goversion"], "go"), labels["goversion"])
	assert.NotEmpty(t, labels["version"])
	assert.NotEmpty(t, labels["revision"])

	// A second registration is refused, not silently doubled.
	assert.Error(t, Register(reg))
	assert.Error(t, Register(nil))
}
