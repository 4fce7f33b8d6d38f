//! The catalogue's four state machines as types: a source's status (`t_sources.enm_status`),
//! a table's state (`t_replica_tables.enm_state`), a copy worker slot's state
//! (`t_copy_workers.enm_state`) and a key range's state (`t_copy_ranges.enm_state`). Each enum
//! owns its one mapping to the catalogue's text (the CHECK constraints in `sql/catalogue.sql`
//! list the same words), its transitions and the guards the SQL functions and workers ask.
//! docs/internals.md tells the same machines with the functions that move them.
//!
//! **Source status.** `add_source` creates a source `Ready`. `init_replica`'s coordinator moves it
//! to `Initialising`, then to `Initialised` when every table is copied (with the binlog position
//! replication starts from). A failure before the copy touched any table gives the status back
//! as it was; a failure after makes it `Error`. `start_replica` makes an initialised (or
//! stopped) source `Running`; with a start position a `Ready` source becomes `Initialised` first.
//! `stop_replica` makes a running source `Stopped`. Any state can go to `Error` (a fatal read or
//! replay error); `enable_replica` brings an `Error` source back to `Stopped` (it has a
//! position) or `Ready` (it has none). `Syncing` is a running source whose tables are being
//! copied again: the catalogue has always allowed it and every guard treats it as `Running`,
//! but this release shows a sync in the table states (below) and never writes it.
//!
//! **Table state.** A table is registered `Pending` (or `Disabled` when it cannot be
//! replicated). A copy worker claims it (`Copying`), then it is `Copied` at its consistent point
//! (or `Failed`, or `Disabled` if it was disabled meanwhile): replay applies its changes after
//! that point, which is how a table copied while the source replicates catches up; once the
//! source replicates (or the sync's catch-up is done) it is `Replicating`. `sync_tables`, `refresh_schema` and `alter_source` put tables back to
//! `Pending`, as does a copy interrupted by `stop_replica` or a crash (copied again whole); a replay error under `on_error_replay = continue`, an untranslatable DDL statement
//! or a filter that leaves it out make it `Disabled` from any state.
//!
//! **Copy worker slot.** The coordinator creates one slot per copy worker, `Starting`; the
//! worker connects to the source and says `Connected`; once every worker is connected the
//! coordinator takes the global read lock and says `Open`; the worker opens its snapshot and
//! says `Ready`; the coordinator reads the coordinates, releases the lock and says `Go` to every
//! ready slot at once; a worker ends `Done` or `Failed`; the coordinator marks the slots it
//! gives up on `Aborted`.
//!
//! **Key range.** A large table split by key is copied range by range: `Pending`, claimed
//! `Copying`, then `Done`. The table is copied when every range is done.

use std::fmt;

/// A word read from the catalogue that is not one of the machine's states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState {
    pub machine: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} \"{}\" in the catalogue", self.machine, self.value)
    }
}

impl std::error::Error for UnknownState {}

/// Why a request does not fit a source's status; the glue turns it into an error naming the
/// source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source replicates with live workers.
    Running,
    /// Another initial copy of the source is running.
    Initialising,
    /// The source was never initialised (and no start position was given).
    NotInitialised,
    /// The source is in error.
    InError,
    /// `enable_replica` of a source that is not in error.
    NotInError,
}

/// Declares an enum of catalogue states with its text, in the order of the CHECK constraint.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident, $machine:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every state, in the order of the catalogue's CHECK constraint.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The catalogue's text for the state.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The state a catalogue text names.
            pub fn parse(text: &str) -> Result<$name, UnknownState> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownState { machine: $machine, value: other.to_string() }),
                }
            }

            /// `('a', 'b')`: the states as an SQL list for `enm_... IN` predicates.
            pub fn sql_list(states: &[$name]) -> String {
                let quoted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                format!("({})", quoted.join(", "))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

states!(
    /// A source's status (`t_sources.enm_status`).
    SourceStatus, "source status", {
        Ready = "ready",
        Initialising = "initialising",
        Initialised = "initialised",
        Running = "running",
        Stopped = "stopped",
        Syncing = "syncing",
        Error = "error",
    }
);

states!(
    /// A replicated table's state (`t_replica_tables.enm_state`).
    TableState, "table state", {
        Pending = "pending",
        Copying = "copying",
        Failed = "failed",
        Copied = "copied",
        Replicating = "replicating",
        Disabled = "disabled",
    }
);

states!(
    /// A copy worker slot's state (`t_copy_workers.enm_state`).
    CopySlotState, "copy worker state", {
        Starting = "starting",
        /// Connected to the source, waiting for the coordinator to hold the global read lock.
        Connected = "connected",
        /// Set by the coordinator, holding the lock: open the snapshot now.
        Open = "open",
        Ready = "ready",
        Go = "go",
        Done = "done",
        Failed = "failed",
        Aborted = "aborted",
    }
);

states!(
    /// A key range's state (`t_copy_ranges.enm_state`).
    RangeState, "key range state", {
        Pending = "pending",
        Copying = "copying",
        Done = "done",
    }
);

/// What happens to a source; `SourceStatus::next` says where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEvent {
    /// `init_replica`'s coordinator begins.
    InitBegins,
    /// Every table is copied and the start position recorded.
    InitDone,
    /// `start_replica(start_position)` recorded a position without a copy.
    PositionGiven,
    /// `start_replica`.
    Start,
    /// `stop_replica`.
    Stop,
    /// A fatal error of a worker.
    Fail,
    /// `enable_replica`; `has_position`: a binlog position is stored.
    Enable { has_position: bool },
}

impl SourceStatus {
    /// The workers should be reading and replaying (`running`, or `syncing`, its variant).
    pub fn is_replicating(self) -> bool {
        matches!(self, SourceStatus::Running | SourceStatus::Syncing)
    }

    /// The source has a copy or a start position to replicate from.
    pub fn is_initialised(self) -> bool {
        !matches!(self, SourceStatus::Ready | SourceStatus::Initialising)
    }

    /// The status after `event`, or why it cannot happen now.
    pub fn next(self, event: SourceEvent) -> Result<SourceStatus, Refusal> {
        use SourceStatus::*;
        match event {
            SourceEvent::InitBegins => Ok(Initialising),
            SourceEvent::InitDone | SourceEvent::PositionGiven => Ok(Initialised),
            SourceEvent::Start => match self {
                Ready | Initialising => Err(Refusal::NotInitialised),
                Error => Err(Refusal::InError),
                Initialised | Running | Stopped | Syncing => Ok(Running),
            },
            SourceEvent::Stop => Ok(if self.is_replicating() { Stopped } else { self }),
            SourceEvent::Fail => Ok(Error),
            SourceEvent::Enable { has_position } => match self {
                Error if has_position => Ok(Stopped),
                Error => Ok(Ready),
                _ => Err(Refusal::NotInError),
            },
        }
    }

    /// `init_replica` may start: not while the source replicates, nor while another initial
    /// copy runs (`alive`: a worker of the source is alive).
    pub fn check_init(self, alive: bool) -> Result<(), Refusal> {
        match self {
            s if s.is_replicating() && alive => Err(Refusal::Running),
            SourceStatus::Initialising if alive => Err(Refusal::Initialising),
            _ => Ok(()),
        }
    }

    /// `start_replica`, `detach_replica`: not while an initial copy runs.
    pub fn check_not_initialising(self, alive: bool) -> Result<(), Refusal> {
        if self == SourceStatus::Initialising && alive {
            Err(Refusal::Initialising)
        } else {
            Ok(())
        }
    }

    /// `sync_tables`, `refresh_schema`: the source must have been initialised.
    pub fn check_sync(self) -> Result<(), Refusal> {
        if self.is_initialised() {
            Ok(())
        } else {
            Err(Refusal::NotInitialised)
        }
    }

    /// The status an initial copy that failed leaves: `Error` once tables were being
    /// replaced, else the status the source had before it (`previous`).
    pub fn after_failed_init(previous: SourceStatus, copying: bool) -> SourceStatus {
        if copying {
            SourceStatus::Error
        } else if previous == SourceStatus::Initialising {
            // an interrupted copy that never got as far as copying
            SourceStatus::Ready
        } else {
            previous
        }
    }
}

impl TableState {
    /// The reader decodes the table's rows and follows its DDL: it is being copied or
    /// replicated (rows at or before its consistent point are skipped later).
    pub const FOLLOWED: &'static [TableState] =
        &[TableState::Pending, TableState::Copying, TableState::Copied, TableState::Replicating];
    /// Replay applies the table's changes (after its consistent point).
    pub const APPLIED: &'static [TableState] = &[TableState::Copied, TableState::Replicating];
    /// A copy of the table is under way or due (counted by `wait_for` and the sync catch-up).
    pub const BEING_COPIED: &'static [TableState] = &[TableState::Pending, TableState::Copying, TableState::Copied];
    /// An initial copy is not finished while a table is in one of these.
    pub const COPY_UNFINISHED: &'static [TableState] = &[TableState::Pending, TableState::Copying, TableState::Failed];
    /// A copy is due or under way: the log must keep the changes it will catch up on.
    pub const AWAITING_COPY: &'static [TableState] = &[TableState::Pending, TableState::Copying];

    pub fn is_followed(self) -> bool {
        TableState::FOLLOWED.contains(&self)
    }

    pub fn is_applied(self) -> bool {
        TableState::APPLIED.contains(&self)
    }

    /// Whether the machine allows `self -> next` (a table can always be disabled, and put back
    /// to pending for a copy).
    pub fn can_move_to(self, next: TableState) -> bool {
        use TableState::*;
        match (self, next) {
            (_, Disabled) | (_, Pending) => true,
            (Pending, Copying) => true,
            (Copying, Copied) | (Copying, Failed) => true,
            (Copied, Replicating) => true,
            // registered without a copy: created by a DDL statement (replicating at once), or
            // loaded by other means before a start position (copied at once)
            (Pending | Disabled, Replicating) | (Pending | Disabled, Copied) => true,
            _ => self == next,
        }
    }
}

impl CopySlotState {
    /// The worker has nothing left to do (it may still be exiting).
    pub fn is_finished(self) -> bool {
        matches!(self, CopySlotState::Done | CopySlotState::Failed | CopySlotState::Aborted)
    }

    /// The coordinator may still abort the slot.
    pub const ABORTABLE: &'static [CopySlotState] = &[
        CopySlotState::Starting,
        CopySlotState::Connected,
        CopySlotState::Open,
        CopySlotState::Ready,
        CopySlotState::Go,
    ];

    /// Whether the machine allows `self -> next`.
    pub fn can_move_to(self, next: CopySlotState) -> bool {
        use CopySlotState::*;
        match (self, next) {
            (Starting, Connected) | (Connected, Open) | (Open, Ready) | (Ready, Go) | (Go, Done) => true,
            (s, Failed) | (s, Aborted) => !s.is_finished(),
            _ => self == next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_catalogue_text() {
        for s in SourceStatus::ALL {
            assert_eq!(SourceStatus::parse(s.as_str()), Ok(*s));
        }
        for s in TableState::ALL {
            assert_eq!(s.as_str().parse::<TableState>(), Ok(*s));
        }
        for s in CopySlotState::ALL {
            assert_eq!(CopySlotState::parse(s.as_str()), Ok(*s));
        }
        for s in RangeState::ALL {
            assert_eq!(RangeState::parse(s.as_str()), Ok(*s));
        }
        let e = TableState::parse("catching_up").unwrap_err();
        assert_eq!(e.to_string(), "unknown table state \"catching_up\" in the catalogue");
    }

    /// The CHECK constraints of the catalogue list exactly the enums' words, in their order.
    #[test]
    fn the_catalogue_check_constraints_list_the_same_states() {
        let sql = include_str!("../../sql/catalogue.sql");
        let check = |list: String| assert!(sql.contains(&list), "catalogue.sql lacks {list}");
        check(format!("CHECK (enm_status IN {})", SourceStatus::sql_list(SourceStatus::ALL)));
        check(format!("CHECK (enm_state IN {})", TableState::sql_list(TableState::ALL)));
        check(format!("CHECK (enm_state IN {})", CopySlotState::sql_list(CopySlotState::ALL)));
        check(format!("CHECK (enm_state IN {})", RangeState::sql_list(RangeState::ALL)));
    }

    #[test]
    fn source_transitions() {
        use SourceStatus::*;
        assert_eq!(Ready.next(SourceEvent::Start), Err(Refusal::NotInitialised));
        assert_eq!(Initialising.next(SourceEvent::Start), Err(Refusal::NotInitialised));
        assert_eq!(Error.next(SourceEvent::Start), Err(Refusal::InError));
        for s in [Initialised, Running, Stopped, Syncing] {
            assert_eq!(s.next(SourceEvent::Start), Ok(Running));
        }
        assert_eq!(Running.next(SourceEvent::Stop), Ok(Stopped));
        assert_eq!(Syncing.next(SourceEvent::Stop), Ok(Stopped));
        assert_eq!(Initialised.next(SourceEvent::Stop), Ok(Initialised));
        assert_eq!(Error.next(SourceEvent::Stop), Ok(Error));
        for s in SourceStatus::ALL {
            assert_eq!(s.next(SourceEvent::Fail), Ok(Error));
        }
        assert_eq!(Error.next(SourceEvent::Enable { has_position: true }), Ok(Stopped));
        assert_eq!(Error.next(SourceEvent::Enable { has_position: false }), Ok(Ready));
        assert_eq!(Running.next(SourceEvent::Enable { has_position: true }), Err(Refusal::NotInError));
        assert_eq!(Ready.next(SourceEvent::PositionGiven), Ok(Initialised));
    }

    #[test]
    fn source_guards() {
        use SourceStatus::*;
        assert_eq!(Running.check_init(true), Err(Refusal::Running));
        assert_eq!(Syncing.check_init(true), Err(Refusal::Running));
        assert_eq!(Running.check_init(false), Ok(()), "a running status with dead workers can be copied again");
        assert_eq!(Initialising.check_init(true), Err(Refusal::Initialising));
        assert_eq!(Initialising.check_init(false), Ok(()), "an interrupted copy resumes");
        assert_eq!(Ready.check_sync(), Err(Refusal::NotInitialised));
        assert_eq!(Initialising.check_sync(), Err(Refusal::NotInitialised));
        assert_eq!(Error.check_sync(), Ok(()));
        assert_eq!(Initialising.check_not_initialising(true), Err(Refusal::Initialising));
        assert_eq!(Initialising.check_not_initialising(false), Ok(()));
        assert_eq!(SourceStatus::after_failed_init(Stopped, false), Stopped);
        assert_eq!(SourceStatus::after_failed_init(Initialising, false), Ready);
        assert_eq!(SourceStatus::after_failed_init(Stopped, true), Error);
    }

    #[test]
    fn table_and_slot_transitions() {
        use TableState::*;
        assert!(Pending.can_move_to(Copying));
        assert!(Copying.can_move_to(Copied));
        assert!(Copied.can_move_to(Replicating));
        assert!(Replicating.can_move_to(Disabled));
        assert!(Replicating.can_move_to(Pending));
        assert!(Pending.can_move_to(Replicating), "a table created by DDL replicates at once");
        assert!(!Copying.can_move_to(Replicating), "a copy ends copied (or failed) first");
        assert!(!Failed.can_move_to(Copied));
        assert!(Copied.is_applied() && Replicating.is_applied() && !Pending.is_applied());
        assert!(Pending.is_followed() && !Disabled.is_followed() && !Failed.is_followed());
        assert_eq!(TableState::sql_list(TableState::AWAITING_COPY), "('pending', 'copying')");

        use CopySlotState as C;
        assert!(C::Starting.can_move_to(C::Connected) && C::Connected.can_move_to(C::Open));
        assert!(C::Open.can_move_to(C::Ready) && C::Ready.can_move_to(C::Go) && C::Go.can_move_to(C::Done));
        assert!(C::Go.can_move_to(C::Failed) && C::Starting.can_move_to(C::Aborted) && C::Open.can_move_to(C::Aborted));
        assert!(!C::Done.can_move_to(C::Aborted) && !C::Starting.can_move_to(C::Go));
        // a snapshot is opened only once the coordinator holds the lock, never on connecting
        assert!(!C::Starting.can_move_to(C::Ready) && !C::Connected.can_move_to(C::Ready));
        assert!(C::Done.is_finished() && !C::Go.is_finished());
    }
}
