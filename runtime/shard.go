package runtime

import (
	"fmt"
	"path/filepath"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/runlock"
	"github.com/selfsup/selfsup/internal/shards"
)

// ShardOptions configure ExtractShard: Manifest is the sharded set's
// manifest (a .json path; the shard's files go beside it, see package
// internal/shards), Index and Count say which shard (0 <= Index < Count).
// File carries the extraction settings of ExtractToFile; its Out is set
// here.
type ShardOptions struct {
	Manifest     string
	Index, Count int
	File         FileOptions
}

// ShardResult is the summary of an ExtractShard run (the JSON of `selfsup
// extract --shard`): the shard's extraction, its manifest entry, and
// either the manifest (when this shard completed the set) or the shards
// still missing.
type ShardResult struct {
	FileResult
	Shard    shards.Shard `json:"shard"`
	Manifest string       `json:"manifest,omitempty"`
	Missing  []int        `json:"missing_shards,omitempty"`
}

// SetInfo describes the whole input of a sharded extraction: its row
// count, the sha256 of every item's source and label in order
// (ItemsSHA256), and whether it is labelled.
type SetInfo struct {
	Rows        int
	ItemsSHA256 string
	Labelled    bool
}

// SetInfoOf describes ds as a whole input.
func SetInfoOf(ds data.Dataset) SetInfo {
	return SetInfo{Rows: ds.Len(), ItemsSHA256: itemsSHA256(ds), Labelled: ds.Len() > 0 && ds.Label(0) >= 0}
}

// ExtractShard extracts shard o.Index of o.Count of ds, the rows
// shards.Range gives (contiguous, in ds's order), with ExtractToFile
// (resumable, atomic), writes the shard's record and, when every shard's
// record is there, the manifest (shards.Merge). Rerunning a shard
// overwrites its files with the same bytes. A lock on the shard's features
// file keeps two jobs from writing the same shard at once; different
// shards run in parallel, in one process or many.
func ExtractShard(sess *Session, ds data.Dataset, o ShardOptions) (*ShardResult, error) {
	if o.Count < 1 || o.Count > shards.MaxShards || o.Index < 0 || o.Index >= o.Count {
		return nil, fmt.Errorf("extract: shard %d/%d: expected 0 <= i < N <= %d", o.Index, o.Count, shards.MaxShards)
	}
	start, end := shards.Range(o.Index, o.Count, ds.Len())
	idx := make([]int, end-start)
	for k := range idx {
		idx[k] = start + k
	}
	return ExtractShardOf(sess, data.Subset(ds, idx), SetInfoOf(ds), o)
}

// ExtractShardOf is ExtractShard for a job that holds only its shard:
// part must be exactly the items of shard o.Index of o.Count of the input
// set describes (the Beam pipeline's file lists).
func ExtractShardOf(sess *Session, part data.Dataset, set SetInfo, o ShardOptions) (*ShardResult, error) {
	if o.Count < 1 || o.Count > shards.MaxShards || o.Index < 0 || o.Index >= o.Count {
		return nil, fmt.Errorf("extract: shard %d/%d: expected 0 <= i < N <= %d", o.Index, o.Count, shards.MaxShards)
	}
	start, end := shards.Range(o.Index, o.Count, set.Rows)
	if part.Len() != end-start {
		return nil, fmt.Errorf("extract: shard %d/%d of %d rows should hold rows %d..%d, got %d items", o.Index, o.Count, set.Rows, start, end, part.Len())
	}
	nm, err := shards.NamesFor(o.Manifest, o.Index, o.Count)
	if err != nil {
		return nil, fmt.Errorf("extract: --shard: %w", err)
	}
	lock, err := runlock.Acquire(nm.Features+".lock", "extract: shard "+nm.Features)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	fo := o.File
	fo.Out = nm.Features
	src := map[string]string{"shard": fmt.Sprintf("%d/%d", o.Index, o.Count)}
	for k, v := range fo.Source {
		src[k] = v
	}
	fo.Source = src
	res, err := ExtractToFile(sess, part, fo)
	if err != nil || !res.Complete {
		if err != nil {
			err = fmt.Errorf("extract: shard %d/%d: %w", o.Index, o.Count, err)
		}
		return &ShardResult{FileResult: derefResult(res)}, err
	}
	if set.Labelled && start == end { // ExtractToFile writes no labels for no rows
		if err := npy.WriteInt64(nm.Labels, []int64{}, 0); err != nil {
			return nil, fmt.Errorf("extract: shard %d/%d: %w", o.Index, o.Count, err)
		}
		res.Files = append(res.Files, nm.Labels)
	}
	modelSum, err := FileSHA256(sess.Path())
	if err != nil {
		return nil, fmt.Errorf("extract: model: %w", err)
	}
	absModel, _ := filepath.Abs(sess.Path())
	h := shards.Header{
		Model: absModel, ModelSHA256: modelSum, Output: res.Output, Dim: res.Dim, Rows: set.Rows,
		Labelled: set.Labelled, ItemsSHA256: set.ItemsSHA256, Source: o.File.Source, Count: o.Count,
	}
	s := shards.Shard{Index: o.Index, Start: start, Rows: end - start}
	if err := shards.Describe(o.Manifest, h, &s); err != nil {
		return nil, err
	}
	if err := shards.WriteRecord(o.Manifest, h, s); err != nil {
		return nil, err
	}
	out := &ShardResult{FileResult: *res, Shard: s}
	out.Files = append(out.Files, nm.Record)
	m, missing, err := shards.Merge(o.Manifest, o.Count)
	if err != nil {
		return nil, err
	}
	if m != nil {
		out.Manifest = o.Manifest
	}
	out.Missing = missing
	return out, nil
}

func derefResult(r *FileResult) FileResult {
	if r == nil {
		return FileResult{}
	}
	return *r
}
