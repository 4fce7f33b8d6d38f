//! The net change per key of a run of row events of one keyed table: what set-based replay
//! applies instead of the events one by one (docs/internals.md, "Set-based apply").
//!
//! Applied one by one in source order, each event needs the destination to hold (update,
//! delete: the old key) or not to hold (insert, the new key of an update that changes it) a
//! row: otherwise it fails (a divergence, or a duplicate key). The reducer folds the events of
//! each key into the key's state *before* the run (`Initially`, the condition the first event
//! touching it puts on the destination) and *after* it (absent, or the last image). Applying
//! the net changes gives the same table as the events one by one exactly when every key's
//! condition holds; and a condition that fails makes some event fail one by one. So the set
//! statements must check every condition (a delete and an update match exactly one row per
//! key, an insert meets no existing key, a key inserted then deleted is absent), and when one
//! does not hold, the caller replays the run one by one to find and report the exact event.
//!
//! A key changed by an update is the old key deleted and the new one inserted: a net update
//! never changes a key, so no set statement moves a row onto a key another row still holds.

use std::collections::HashMap;
use std::hash::Hash;

/// One row event of a keyed table: the old key (update, delete), the new key (of the row:
/// insert, update) and the new row.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<K, R> {
    Insert { key: K, row: R },
    Update { old_key: K, key: K, row: R },
    Delete { old_key: K },
}

/// What the first event touching a key needs of the destination before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initially {
    Present,
    Absent,
}

#[derive(Debug, Clone)]
struct KeyState<R> {
    initially: Initially,
    /// None: absent after the events so far.
    now: Option<R>,
}

/// An event that certainly fails when applied one by one (whatever the destination holds,
/// given the conditions of the earlier events): its index in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldFail(pub usize);

/// The statements that apply a run's net change, each of which must touch exactly one row
/// per element (`absent`: none), in this order: deletes, absent checks, updates, inserts.
#[derive(Debug, Clone, PartialEq)]
pub struct NetChange<K, R> {
    pub deletes: Vec<K>,
    /// Keys inserted and deleted again within the run: one by one, the insert needed them
    /// absent before the run.
    pub absent: Vec<K>,
    /// Rows of keys present before and after the run (same key: a net update never moves a row).
    pub updates: Vec<(K, R)>,
    pub inserts: Vec<R>,
}

impl<K, R> NetChange<K, R> {
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.absent.is_empty() && self.updates.is_empty() && self.inserts.is_empty()
    }
}

/// Folds a run of row events, in source order, into the net change per key.
#[derive(Debug, Clone)]
pub struct Reducer<K, R> {
    keys: HashMap<K, usize>,
    /// Per key, in the order first touched (the statements list keys in that order).
    states: Vec<(K, KeyState<R>)>,
    events: usize,
}

impl<K: Eq + Hash + Clone, R> Default for Reducer<K, R> {
    fn default() -> Self {
        Reducer { keys: HashMap::new(), states: Vec::new(), events: 0 }
    }
}

impl<K: Eq + Hash + Clone, R> Reducer<K, R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Row events folded so far.
    pub fn events(&self) -> usize {
        self.events
    }

    /// The state of `key`, created with what its first event needs of the destination.
    fn state(&mut self, key: K, first_needs: Initially) -> &mut KeyState<R> {
        let i = match self.keys.get(&key) {
            Some(&i) => i,
            None => {
                self.keys.insert(key.clone(), self.states.len());
                self.states.push((key, KeyState { initially: first_needs, now: None }));
                self.states.len() - 1
            }
        };
        &mut self.states[i].1
    }

    fn known(&self, key: &K) -> Option<bool> {
        self.keys.get(key).map(|&i| self.states[i].1.now.is_some())
    }

    /// Removes the row of `key` (a delete, or the old side of a key-changing update).
    fn remove(&mut self, key: K, at: usize) -> Result<(), WouldFail> {
        if self.known(&key) == Some(false) {
            return Err(WouldFail(at));
        }
        self.state(key, Initially::Present).now = None;
        Ok(())
    }

    /// Puts a new row on `key` (an insert, or the new side of a key-changing update).
    fn put(&mut self, key: K, row: R, at: usize) -> Result<(), WouldFail> {
        if self.known(&key) == Some(true) {
            return Err(WouldFail(at));
        }
        self.state(key, Initially::Absent).now = Some(row);
        Ok(())
    }

    /// Folds the next event (`at`: its index in the run, for `WouldFail`).
    pub fn push(&mut self, at: usize, change: Change<K, R>) -> Result<(), WouldFail> {
        self.events += 1;
        match change {
            Change::Insert { key, row } => self.put(key, row, at),
            Change::Delete { old_key } => self.remove(old_key, at),
            Change::Update { old_key, key, row } if old_key == key => {
                if self.known(&key) == Some(false) {
                    return Err(WouldFail(at));
                }
                self.state(key, Initially::Present).now = Some(row);
                Ok(())
            }
            Change::Update { old_key, key, row } => {
                self.remove(old_key, at)?;
                self.put(key, row, at)
            }
        }
    }

    /// The net change of the events folded.
    pub fn finish(self) -> NetChange<K, R> {
        let mut net = NetChange { deletes: Vec::new(), absent: Vec::new(), updates: Vec::new(), inserts: Vec::new() };
        for (key, s) in self.states {
            match (s.initially, s.now) {
                (Initially::Present, None) => net.deletes.push(key),
                (Initially::Present, Some(row)) => net.updates.push((key, row)),
                (Initially::Absent, Some(row)) => net.inserts.push(row),
                (Initially::Absent, None) => net.absent.push(key),
            }
        }
        net
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type K = u8;
    type R = (u8, u32); // (key, payload): a row holds its key

    fn ins(k: K, v: u32) -> Change<K, R> {
        Change::Insert { key: k, row: (k, v) }
    }
    fn upd(old: K, k: K, v: u32) -> Change<K, R> {
        Change::Update { old_key: old, key: k, row: (k, v) }
    }
    fn del(k: K) -> Change<K, R> {
        Change::Delete { old_key: k }
    }

    /// The destination, applying events one by one as replay's prepared statements do: the
    /// index of the first event that fails, or the table after all of them.
    fn one_by_one(initial: &BTreeMap<K, R>, events: &[Change<K, R>]) -> Result<BTreeMap<K, R>, usize> {
        let mut t = initial.clone();
        for (i, e) in events.iter().enumerate() {
            match e {
                Change::Insert { key, row } => {
                    if t.contains_key(key) {
                        return Err(i); // duplicate key
                    }
                    t.insert(*key, *row);
                }
                Change::Update { old_key, key, row } => {
                    if !t.contains_key(old_key) {
                        return Err(i); // matched 0 rows
                    }
                    if key != old_key && t.contains_key(key) {
                        return Err(i); // duplicate key
                    }
                    t.remove(old_key);
                    t.insert(*key, *row);
                }
                Change::Delete { old_key } => {
                    if t.remove(old_key).is_none() {
                        return Err(i);
                    }
                }
            }
        }
        Ok(t)
    }

    /// The set statements on the destination, with the checks set-based replay makes (rows
    /// touched per statement compared with the keys it names; an insert on an existing key
    /// fails); None: a check failed (the caller then replays one by one).
    fn as_sets(initial: &BTreeMap<K, R>, net: &NetChange<K, R>) -> Option<BTreeMap<K, R>> {
        let mut t = initial.clone();
        for k in &net.deletes {
            t.remove(k)?;
        }
        if net.absent.iter().any(|k| t.contains_key(k)) {
            return None;
        }
        for (k, r) in &net.updates {
            *t.get_mut(k)? = *r;
        }
        for r in &net.inserts {
            if t.insert(r.0, *r).is_some() {
                return None;
            }
        }
        Some(t)
    }

    fn reduce(events: &[Change<K, R>]) -> Result<NetChange<K, R>, WouldFail> {
        let mut red = Reducer::new();
        for (i, e) in events.iter().enumerate() {
            red.push(i, e.clone())?;
        }
        Ok(red.finish())
    }

    /// The contract: sets succeed exactly when one by one does, with the same table; a
    /// refusal by the reducer or a failed check means one by one fails too.
    fn check(initial: &BTreeMap<K, R>, events: &[Change<K, R>]) {
        let naive = one_by_one(initial, events);
        match reduce(events) {
            Err(WouldFail(i)) => {
                let first = naive.expect_err(&format!("reducer refused event {i} of {events:?} on {initial:?}"));
                assert!(first <= i, "one by one fails at {first}, the reducer said {i}: {events:?} on {initial:?}");
            }
            Ok(net) => match (as_sets(initial, &net), naive) {
                (Some(a), Ok(b)) => assert_eq!(a, b, "{events:?} on {initial:?}: {net:?}"),
                (None, Err(_)) => {}
                (a, b) => panic!("sets {a:?} vs one by one {b:?}: {events:?} on {initial:?}: {net:?}"),
            },
        }
    }

    fn table(rows: &[(K, u32)]) -> BTreeMap<K, R> {
        rows.iter().map(|&(k, v)| (k, (k, v))).collect()
    }

    #[test]
    fn insert_then_updates_then_key_change_delete_reinsert() {
        let ev = vec![ins(1, 10), upd(1, 1, 11), upd(1, 1, 12), upd(1, 1, 13), upd(1, 2, 14), del(2), ins(1, 15)];
        let net = reduce(&ev).unwrap();
        // key 1: absent before, present after (one insert of the last image); key 2 inserted
        // and deleted within the run: must be absent before
        assert_eq!(net.inserts, vec![(1, 15)]);
        assert_eq!(net.absent, vec![2]);
        assert!(net.deletes.is_empty() && net.updates.is_empty());
        check(&table(&[]), &ev);
        check(&table(&[2, 0].map(|k| (k, 0))), &ev); // key 2 existed: one by one fails
        check(&table(&[(1, 0)]), &ev); // key 1 existed: the insert fails
    }

    #[test]
    fn delete_then_insert_is_an_update() {
        let ev = vec![del(3), ins(3, 30)];
        let net = reduce(&ev).unwrap();
        assert_eq!(net.updates, vec![(3, (3, 30))]);
        check(&table(&[(3, 1)]), &ev);
        check(&table(&[]), &ev); // the delete matches nothing: divergence both ways
    }

    #[test]
    fn updates_of_an_existing_key_are_one_update_that_must_match() {
        let ev = vec![upd(4, 4, 1), upd(4, 4, 2), upd(4, 4, 3)];
        assert_eq!(reduce(&ev).unwrap().updates, vec![(4, (4, 3))]);
        check(&table(&[(4, 0)]), &ev);
        check(&table(&[]), &ev);
    }

    #[test]
    fn a_key_change_is_a_delete_and_an_insert() {
        let ev = vec![upd(1, 2, 5)];
        let net = reduce(&ev).unwrap();
        assert_eq!((net.deletes.clone(), net.inserts.clone()), (vec![1], vec![(2, 5)]));
        check(&table(&[(1, 0)]), &ev);
        check(&table(&[(1, 0), (2, 0)]), &ev); // the new key is taken: duplicate both ways
        check(&table(&[]), &ev);
        // a swap through a third key
        let swap = vec![upd(1, 9, 1), upd(2, 1, 2), upd(9, 2, 3)];
        let net = reduce(&swap).unwrap();
        assert_eq!(net.updates, vec![(1, (1, 2)), (2, (2, 3))]);
        assert_eq!(net.absent, vec![9]);
        check(&table(&[(1, 0), (2, 0)]), &swap);
    }

    #[test]
    fn events_that_certainly_fail_are_refused_at_their_index() {
        assert_eq!(reduce(&[del(1), del(1)]).unwrap_err(), WouldFail(1));
        assert_eq!(reduce(&[ins(1, 0), ins(1, 0)]).unwrap_err(), WouldFail(1));
        assert_eq!(reduce(&[del(1), upd(1, 1, 0)]).unwrap_err(), WouldFail(1));
        assert_eq!(reduce(&[ins(2, 0), upd(1, 2, 0)]).unwrap_err(), WouldFail(1));
        assert_eq!(reduce(&[upd(1, 2, 0), upd(1, 3, 0)]).unwrap_err(), WouldFail(1));
    }

    /// A small deterministic generator (no dependency): xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_runs_match_one_by_one() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let (mut refused, mut failed_checks, mut applied) = (0, 0, 0);
        for _ in 0..60_000 {
            let keys = 1 + rng.below(5) as u8;
            let mut initial: BTreeMap<K, R> = BTreeMap::new();
            for k in 0..keys {
                if rng.below(2) == 0 {
                    initial.insert(k, (k, rng.below(3) as u32));
                }
            }
            // mostly valid runs: pick events that tend to succeed on the current state
            let mut shadow = initial.clone();
            let n = 1 + rng.below(10) as usize;
            let mut events = Vec::with_capacity(n);
            for v in 0..n as u32 {
                let k = rng.below(keys as u64) as u8;
                let wrong = rng.below(12) == 0;
                let e = match (shadow.contains_key(&k) != wrong, rng.below(3)) {
                    (false, _) => ins(k, v),
                    (true, 0) => del(k),
                    (true, 1) => upd(k, rng.below(keys as u64) as u8, v),
                    (true, _) => upd(k, k, v),
                };
                if let Ok(t) = one_by_one(&shadow, std::slice::from_ref(&e)) {
                    shadow = t;
                }
                events.push(e);
            }
            check(&initial, &events);
            match reduce(&events) {
                Err(_) => refused += 1,
                Ok(net) if as_sets(&initial, &net).is_none() => failed_checks += 1,
                Ok(_) => applied += 1,
            }
        }
        // the generator reaches every outcome
        assert!(refused > 300 && failed_checks > 300 && applied > 15_000, "{refused} {failed_checks} {applied}");
    }
}
