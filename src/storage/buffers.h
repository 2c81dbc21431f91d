// Buffer access and page allocation for drift indexes.
#pragma once

#include "pages.h"

// True if blkno exists in the index's main fork. A block count seen once is
// re-read only when a block lies beyond it (RelationGetNumberOfBlocks is a
// system call): drift truncates an index only by free pages no link reaches
// (drift_truncate_free_tail), so a stale count matters only for a corrupt
// link, which reading the block then refuses with an error of its own.
bool drift_block_exists(Relation index, BlockNumber blkno);

// The index's size in blocks as drift_block_exists last saw it: it may
// have grown since, or lost a free tail no link reaches (truncated by
// another backend), so it serves as a hint only (a chain walk's loop bound,
// refreshed when passed).
BlockNumber drift_known_blocks(Relation index);

// Reads blkno, locks it in mode, and checks it is a drift page of type.
Buffer drift_read_locked(Relation index, BlockNumber blkno, int mode, uint16 type, const DriftMetaPageData *meta);

// Copies the metapage into *meta after checking magic and version.
void drift_read_meta(Relation index, DriftMetaPageData *meta);

// The same without the retired list (6 kB an insert has no use for): meta
// may be allocated only up to offsetof(DriftMetaPageData, retired).
void drift_read_meta_fields(Relation index, DriftMetaPageData *meta);

// What is wrong with a metapage (magic, version, dimension, capacities), or
// NULL if nothing. May format into buf.
const char *drift_meta_problem(const DriftMetaPageData *meta, char *buf, Size buflen);

// Raises "index is corrupt" if drift_meta_problem finds anything.
void drift_check_meta(Relation index, const DriftMetaPageData *meta);

// WAL-logs a recovery conflict for hot standbys: their queries whose
// snapshots are no newer than xid (a FullTransactionId as uint64) are
// cancelled before replay goes on, as when btree reuses a page (the record
// is nbtree's page-reuse record, whose redo does just that). Called before
// pages such queries may read are freed or reused.
void drift_log_conflict(Relation index, BlockNumber blkno, uint64 xid);

// The oldest transaction id a snapshot anywhere may still need, as a
// FullTransactionId (uint64), computed afresh. Anything older is gone from
// every snapshot; this backend's own snapshots count (VACUUM's do not).
uint64 drift_xid_horizon();

// Gives the free pages at the end of the index back to the file system
// when at least 16 of them are there and no other backend has the index
// open (a conditional AccessExclusiveLock, held only while truncating, as
// VACUUM truncates a heap; standbys replay the lock), and not in parallel
// mode. Returns the pages given back.
BlockNumber drift_truncate_free_tail(Relation index);

// An exclusively locked page for reuse: a FREE page from the free space map,
// or a new block at the end of fork `fork`. The caller initializes it.
Buffer drift_new_buffer(Relation index, ForkNumber fork);

// An edit of the metapage: the one way its changes are WAL-logged. The
// metapage is locked exclusively and a generic WAL record started with it;
// the caller may add up to three pages it locked before (writers lock chain
// and directory pages, then the metapage) and edits the copies it gets.
struct DriftMetaEdit {
    Buffer buf;
    GenericXLogState *state;
    DriftMetaPage meta; /* the copy to edit */
};

// Locks the metapage and starts its record.
void drift_meta_begin(Relation index, DriftMetaEdit *e);

// Adds a locked page (flags: GENERIC_XLOG_FULL_IMAGE for a new one) to
// the record; returns the copy to edit.
Page drift_meta_add(DriftMetaEdit *e, Buffer buf, int flags);

// Writes the record and unlocks the metapage (the caller unlocks the pages it added).
void drift_meta_finish(DriftMetaEdit *e);

// Drops the edit unwritten and unlocks the metapage.
void drift_meta_abort(DriftMetaEdit *e);

// Reads a blob chain starting at head into out (nbytes bytes).
void drift_read_blob(Relation index, BlockNumber head, char *out, Size nbytes);
