//! Which row events of a batch may be applied while earlier batches are still being applied
//! by other replay workers (`replay_workers` > 1, docs/internals.md "Parallel replay").
//!
//! A replay worker applying batch N+1 next to the worker applying batch N may apply at once
//! only the events that touch no row N touches: their order relative to N's events cannot
//! matter, and N's worker never waits on a lock they take. Everything else waits until N
//! is committed. Rows are named by their table and a hash of their key (a collision only
//! makes an event wait). An event linked to a waiting event through a shared key waits too
//! (an update may change a key: the keys an event touches are its old and its new key), so
//! the events applied at once and the ones that wait never touch the same row, and each group
//! keeps its source order.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A row of a replicated table: its table id and the hash of its key values.
pub type RowId = (i32, u64);

/// The id of the row with this key in this table.
pub fn row_id(table_id: i32, key: &[Option<&str>]) -> RowId {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (table_id, h.finish())
}

/// What an event of the later batch touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touches {
    /// These rows (one key, or the old and the new key of an update).
    Rows(Vec<RowId>),
    /// Something the keys do not describe (a table applied one by one, a DDL statement): the
    /// event waits for the earlier batches.
    Unknown,
}

/// For each event, whether it must wait until the rows `busy` (those the earlier batches
/// touch) are committed: it touches one of them, or shares a row with an event that does
/// (transitively), or what it touches is unknown.
pub fn must_wait(events: &[Touches], busy: &HashSet<RowId>) -> Vec<bool> {
    // union-find over the rows the events touch: one set per group of linked rows
    let mut index: HashMap<RowId, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut id_of = |row: RowId, parent: &mut Vec<usize>| -> usize {
        *index.entry(row).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    let mut first_of: Vec<Option<usize>> = Vec::with_capacity(events.len());
    let mut rows_seen: Vec<(usize, RowId)> = Vec::new();
    for e in events {
        match e {
            Touches::Rows(rows) if !rows.is_empty() => {
                let first = id_of(rows[0], &mut parent);
                for r in &rows[1..] {
                    let other = id_of(*r, &mut parent);
                    let (a, b) = (find(&mut parent, first), find(&mut parent, other));
                    if a != b {
                        parent[b] = a;
                    }
                }
                for r in rows {
                    rows_seen.push((first, *r));
                }
                first_of.push(Some(first));
            }
            _ => first_of.push(None),
        }
    }
    // a group waits when one of its rows is busy
    let mut waiting: HashSet<usize> = HashSet::new();
    for (set, row) in &rows_seen {
        if busy.contains(row) {
            waiting.insert(find(&mut parent, *set));
        }
    }
    first_of
        .into_iter()
        .map(|f| match f {
            None => true,
            Some(i) => waiting.contains(&find(&mut parent, i)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(keys: &[&str]) -> Touches {
        Touches::Rows(keys.iter().map(|k| row_id(1, &[Some(k)])).collect())
    }

    fn busy(keys: &[&str]) -> HashSet<RowId> {
        keys.iter().map(|k| row_id(1, &[Some(k)])).collect()
    }

    #[test]
    fn events_on_rows_nobody_else_touches_go_at_once() {
        let w = must_wait(&[rows(&["1"]), rows(&["2"]), rows(&["3"])], &busy(&["9"]));
        assert_eq!(w, vec![false, false, false]);
    }

    #[test]
    fn an_event_on_a_busy_row_waits_and_so_does_every_event_linked_to_it() {
        // 5 -> 6 (an update changing the key), then 1 -> 5 where 1 is busy: both wait, as
        // does a later insert of 6; 7 is unrelated
        let w = must_wait(&[rows(&["5", "6"]), rows(&["7"]), rows(&["1", "5"]), rows(&["6"])], &busy(&["1"]));
        assert_eq!(w, vec![true, false, true, true]);
    }

    #[test]
    fn the_same_key_in_another_table_is_another_row() {
        let other = Touches::Rows(vec![row_id(2, &[Some("1")])]);
        assert_eq!(must_wait(&[other, rows(&["1"])], &busy(&["1"])), vec![false, true]);
    }

    #[test]
    fn unknown_events_wait_without_holding_back_the_others() {
        assert_eq!(must_wait(&[Touches::Unknown, rows(&["2"])], &busy(&[])), vec![true, false]);
        assert_eq!(must_wait(&[Touches::Rows(vec![])], &busy(&[])), vec![true]);
    }

    #[test]
    fn keys_with_nulls_and_several_columns_are_told_apart() {
        assert_ne!(row_id(1, &[Some("a"), None]), row_id(1, &[None, Some("a")]));
        assert_ne!(row_id(1, &[Some("ab"), Some("c")]), row_id(1, &[Some("a"), Some("bc")]));
        assert_eq!(row_id(1, &[Some("a"), None]), row_id(1, &[Some("a"), None]));
    }
}
