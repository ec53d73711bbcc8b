package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSortNatural(t *testing.T) {
	names := []string{"v10", "v9", "v1", "itemcf-20260201T000000Z", "itemcf-20260102T235959Z", "v01", "a", "v", "v2b", "v2a"}
	sortNatural(names)
	require.Equal(t, []string{"a", "itemcf-20260102T235959Z", "itemcf-20260201T000000Z", "v", "v01", "v1", "v2a", "v2b", "v9", "v10"}, names)
}
