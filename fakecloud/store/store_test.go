package store

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type rec struct {
	ID   string
	Tags []string
}

func TestFailedUpdateLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	s := New()
	tbl := Register[rec](s, "recs")
	require.NoError(t, s.Open(dir))
	require.NoError(t, s.Update(func(tx *Tx) error { return tbl.Put(tx, "a", &rec{ID: "a"}) }))

	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		require.NoError(t, tbl.Put(tx, "b", &rec{ID: "b"}))
		require.NoError(t, tbl.Delete(tx, "a"))
		// Inside the transaction its own writes are visible.
		_, okA := tbl.Get(tx, "a")
		_, okB := tbl.Get(tx, "b")
		assert.False(t, okA)
		assert.True(t, okB)
		assert.Equal(t, 1, tbl.Len(tx))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NoError(t, s.View(func(tx *Tx) error {
		_, okA := tbl.Get(tx, "a")
		_, okB := tbl.Get(tx, "b")
		assert.True(t, okA, "a failed update must not delete")
		assert.False(t, okB, "a failed update must not insert")
		return nil
	}))
	require.NoError(t, s.Close())

	// Nothing of the failed update reached the disk either.
	s2 := New()
	tbl2 := Register[rec](s2, "recs")
	require.NoError(t, s2.Open(dir))
	defer s2.Close()
	require.NoError(t, s2.View(func(tx *Tx) error {
		all := tbl2.List(tx)
		require.Len(t, all, 1)
		assert.Equal(t, "a", all[0].ID)
		return nil
	}))
}

func TestListKeepsCreationOrderAcrossRestartAndReplace(t *testing.T) {
	dir := t.TempDir()
	s := New()
	tbl := Register[rec](s, "recs")
	require.NoError(t, s.Open(dir))
	for _, id := range []string{"z", "a", "m"} {
		require.NoError(t, s.Update(func(tx *Tx) error { return tbl.Put(tx, id, &rec{ID: id}) }))
	}
	// Replacing a record keeps its place.
	require.NoError(t, s.Update(func(tx *Tx) error { return tbl.Put(tx, "z", &rec{ID: "z", Tags: []string{"x"}}) }))
	ids := func(s *Store, tbl *Table[rec]) (out []string) {
		_ = s.View(func(tx *Tx) error {
			for _, r := range tbl.List(tx) {
				out = append(out, r.ID)
			}
			return nil
		})
		return out
	}
	assert.Equal(t, []string{"z", "a", "m"}, ids(s, tbl))
	require.NoError(t, s.Close())
	s2 := New()
	tbl2 := Register[rec](s2, "recs")
	require.NoError(t, s2.Open(dir))
	defer s2.Close()
	assert.Equal(t, []string{"z", "a", "m"}, ids(s2, tbl2))
	require.NoError(t, s2.Update(func(tx *Tx) error { return tbl2.Put(tx, "b", &rec{ID: "b"}) }))
	assert.Equal(t, []string{"z", "a", "m", "b"}, ids(s2, tbl2), "sequence continues after a restart")
}

func TestWriteInViewIsRefused(t *testing.T) {
	s := New()
	tbl := Register[rec](s, "recs")
	err := s.View(func(tx *Tx) error { return tbl.Put(tx, "a", &rec{}) })
	assert.Error(t, err)
}

func TestListBeforeOpenDoesNotHideRestoredRows(t *testing.T) {
	dir := t.TempDir()
	s := New()
	tbl := Register[rec](s, "recs")
	require.NoError(t, s.Open(dir))
	require.NoError(t, s.Update(func(tx *Tx) error { return tbl.Put(tx, "a", &rec{ID: "a"}) }))
	require.NoError(t, s.Close())

	s2 := New()
	tbl2 := Register[rec](s2, "recs")
	require.NoError(t, s2.View(func(tx *Tx) error { assert.Empty(t, tbl2.List(tx)); return nil }))
	require.NoError(t, s2.Open(dir))
	defer s2.Close()
	require.NoError(t, s2.View(func(tx *Tx) error { assert.Len(t, tbl2.List(tx), 1); return nil }))
}
