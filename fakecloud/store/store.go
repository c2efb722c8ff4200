// Package store holds the simulated cloud's state: typed tables kept in memory and written
// through to a bbolt file, so a fakecloud restart keeps every resource.
//
// A write is a transaction: Update stages every Put and Delete, writes them to disk in one
// bbolt transaction, and only then makes them visible in memory. A handler that returns an
// error therefore leaves no trace, on disk or in memory. Records are shared between
// readers: treat a *T from Get or List as read-only and Put a modified copy instead.
//
// The package knows nothing about cloud services or HTTP.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store is the set of tables. Register every table, then Open.
type Store struct {
	mu     sync.RWMutex
	db     *bolt.DB
	seq    uint64
	tables map[string]*tableData
}

type entry struct {
	Seq uint64          `json:"seq"`
	V   json.RawMessage `json:"v"`
	val any             // decoded *T
}

type tableData struct {
	name   string
	decode func([]byte) (any, error)
	rows   map[string]*entry
	sortMu sync.Mutex // readers share the store lock, so the order cache needs its own
	sorted []string   // ids ordered by creation; nil when stale
}

// New returns an empty store; call Open (or OpenMemory) after registering tables.
func New() *Store { return &Store{tables: map[string]*tableData{}} }

// Table is a typed view of one table.
type Table[T any] struct {
	name string
}

// Register adds a table of T records. It must happen before Open.
func Register[T any](s *Store, name string) *Table[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.tables[name]; !dup {
		s.tables[name] = &tableData{
			name: name,
			decode: func(b []byte) (any, error) {
				v := new(T)
				return v, json.Unmarshal(b, v)
			},
			rows: map[string]*entry{},
		}
	}
	return &Table[T]{name: name}
}

// Open loads every registered table from DIR/state.db, creating it when absent.
func (s *Store) Open(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open state db in %s: %w", dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db = db
	return db.View(func(btx *bolt.Tx) error {
		for name, td := range s.tables {
			b := btx.Bucket([]byte(name))
			if b == nil {
				continue
			}
			err := b.ForEach(func(k, v []byte) error {
				var e entry
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("table %s row %s: %w", name, k, err)
				}
				val, err := td.decode(e.V)
				if err != nil {
					return fmt.Errorf("table %s row %s: %w", name, k, err)
				}
				e.val = val
				td.rows[string(k)] = &e
				td.sorted = nil // a List before Open cached an empty order
				s.seq = max(s.seq, e.Seq)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Close releases the database file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Tx is a read or write transaction.
type Tx struct {
	s        *Store
	writable bool
	staged   map[string]map[string]*entry // nil *entry = delete
}

// View runs fn with a consistent read-only view.
func (s *Store) View(fn func(tx *Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&Tx{s: s})
}

// Update runs fn exclusively; its writes become durable and visible only if fn returns nil.
func (s *Store) Update(fn func(tx *Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &Tx{s: s, writable: true, staged: map[string]map[string]*entry{}}
	if err := fn(tx); err != nil {
		return err
	}
	return s.commit(tx)
}

func (s *Store) commit(tx *Tx) error {
	if len(tx.staged) == 0 {
		return nil
	}
	if s.db != nil {
		err := s.db.Update(func(btx *bolt.Tx) error {
			for table, rows := range tx.staged {
				b, err := btx.CreateBucketIfNotExists([]byte(table))
				if err != nil {
					return err
				}
				for id, e := range rows {
					if e == nil {
						if err := b.Delete([]byte(id)); err != nil {
							return err
						}
						continue
					}
					raw, err := json.Marshal(e)
					if err != nil {
						return err
					}
					if err := b.Put([]byte(id), raw); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("persist state: %w", err)
		}
	}
	for table, rows := range tx.staged {
		td := s.tables[table]
		for id, e := range rows {
			_, existed := td.rows[id]
			if e == nil {
				delete(td.rows, id)
				td.sorted = nil
				continue
			}
			td.rows[id] = e
			if !existed {
				td.sorted = nil
			}
		}
	}
	return nil
}

// Reset deletes every row of every table.
func (s *Store) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		err := s.db.Update(func(btx *bolt.Tx) error {
			for name := range s.tables {
				if btx.Bucket([]byte(name)) != nil {
					if err := btx.DeleteBucket([]byte(name)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reset state: %w", err)
		}
	}
	for _, td := range s.tables {
		td.rows = map[string]*entry{}
		td.sorted = nil
	}
	return nil
}

// Dump returns every table's rows, for the admin endpoint and debugging.
func (s *Store) Dump() map[string]map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]map[string]any{}
	for name, td := range s.tables {
		rows := map[string]any{}
		for id, e := range td.rows {
			rows[id] = e.val
		}
		out[name] = rows
	}
	return out
}

var errReadOnly = errors.New("store: write in a read-only transaction")

func (tx *Tx) table(name string) *tableData {
	td, ok := tx.s.tables[name]
	if !ok {
		panic("store: table " + name + " used before Register") // programming error, not input
	}
	return td
}

// Get returns the record with id, seeing this transaction's own writes.
func (t *Table[T]) Get(tx *Tx, id string) (*T, bool) {
	if rows, ok := tx.staged[t.name]; ok {
		if e, ok := rows[id]; ok {
			if e == nil {
				return nil, false
			}
			return e.val.(*T), true
		}
	}
	e, ok := tx.table(t.name).rows[id]
	if !ok {
		return nil, false
	}
	return e.val.(*T), true
}

// Put stores v under id (insert or replace).
func (t *Table[T]) Put(tx *Tx, id string, v *T) error {
	if !tx.writable {
		return errReadOnly
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", t.name, id, err)
	}
	seq := uint64(0)
	if old, ok := tx.table(t.name).rows[id]; ok {
		seq = old.Seq
	} else if staged, ok := tx.staged[t.name][id]; ok && staged != nil {
		seq = staged.Seq
	} else {
		tx.s.seq++
		seq = tx.s.seq
	}
	if tx.staged[t.name] == nil {
		tx.staged[t.name] = map[string]*entry{}
	}
	tx.staged[t.name][id] = &entry{Seq: seq, V: raw, val: v}
	return nil
}

// Delete removes id; deleting an absent id is not an error.
func (t *Table[T]) Delete(tx *Tx, id string) error {
	if !tx.writable {
		return errReadOnly
	}
	if tx.staged[t.name] == nil {
		tx.staged[t.name] = map[string]*entry{}
	}
	tx.staged[t.name][id] = nil
	return nil
}

// List returns every record in creation order, seeing this transaction's own writes.
func (t *Table[T]) List(tx *Tx) []*T {
	td := tx.table(t.name)
	td.sortMu.Lock()
	if td.sorted == nil {
		ids := make([]string, 0, len(td.rows))
		for id := range td.rows {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int { return cmpSeq(td.rows[a].Seq, td.rows[b].Seq) })
		td.sorted = ids
	}
	sorted := td.sorted
	td.sortMu.Unlock()
	return collect[T](td, sorted, tx.staged[t.name])
}

// Len counts the records, seeing this transaction's own writes.
func (t *Table[T]) Len(tx *Tx) int {
	n := len(tx.table(t.name).rows)
	for id, e := range tx.staged[t.name] {
		_, existed := tx.table(t.name).rows[id]
		switch {
		case e == nil && existed:
			n--
		case e != nil && !existed:
			n++
		}
	}
	return n
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func collect[T any](td *tableData, ids []string, staged map[string]*entry) []*T {
	out := make([]*T, 0, len(ids)+len(staged))
	for _, id := range ids {
		if e, ok := staged[id]; ok {
			if e != nil {
				out = append(out, e.val.(*T))
			}
			continue
		}
		out = append(out, td.rows[id].val.(*T))
	}
	if len(staged) > 0 {
		var added []*entry
		for id, e := range staged {
			if _, existed := td.rows[id]; !existed && e != nil {
				added = append(added, e)
			}
		}
		slices.SortFunc(added, func(a, b *entry) int { return cmpSeq(a.Seq, b.Seq) })
		for _, e := range added {
			out = append(out, e.val.(*T))
		}
	}
	return out
}
