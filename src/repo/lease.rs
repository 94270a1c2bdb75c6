//! Upload leases (issue 7): who owns an upload while its image is `saving`
//! (or a glance-direct stage while its image is `uploading` and the stage's
//! data is being written), for how long, and what a [`super::Change`] of the upload's status asks of
//! the lease row ([`LeaseCheck`]) in the transaction that writes it.
//!
//! A lease names the node (`node_id`, configured or derived from the host),
//! the process on it ([`ProcessId`]: boot id, pid, start time) and the one
//! upload (a random token). It is taken in the claim's transaction, renewed
//! by the upload's heartbeat, and released by its commit or rollback. Its
//! expiry is counted on the database's clock, so nodes with skewed clocks
//! (or a pinned `PORTCULLIS_NOW`) agree on it; an expired lease is forfeit:
//! it can be neither renewed nor committed, only recovered.
//!
//! This module owns the types and the liveness test of a process on this
//! machine; it must not do SQL (that is `sql/leases.rs`) nor touch data.

use std::time::Duration;

use crate::image::ImageId;
use crate::store::StagingIntent;

/// What a status change asks of the image's lease row, checked and applied
/// in the same transaction as the compare-and-swap on the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseCheck {
    /// The claim (`queued → saving`) takes a new lease; any row left for the
    /// `queued` image is stale and replaced.
    Take(NewLease),
    /// The owner's commit or rollback (recovery's too, once it took the
    /// dead upload's lease over): the lease must be `token` and not expired;
    /// it is released.
    Held {
        /// The upload's token.
        token: String,
    },
    /// No live lease may be held on the image: an import's `uploading →
    /// queued` (a glance-direct stage still being written holds one). An
    /// expired row is removed (its staging, if any, is the sweeper's).
    Free,
}

/// A lease to take with a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLease {
    /// A random token naming this one upload.
    pub token: String,
    /// Who takes it.
    pub holder: LeaseHolder,
    /// How long it lasts without renewal.
    pub ttl: Duration,
}

/// A node and a process on it: who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The node (`node_id`; unique per machine).
    pub node_id: String,
    /// The process on that node.
    pub process: ProcessId,
}

/// A lease as stored, with its image's status, as recovery and the
/// sweeper read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The image.
    pub image_id: ImageId,
    /// The holder's node.
    pub node_id: String,
    /// The holder's process.
    pub process: ProcessId,
    /// The upload's token.
    pub token: String,
    /// The staging intent, once recorded (before the first byte).
    pub intent: Option<StagingIntent>,
    /// Whether it had expired when it was read (database clock).
    pub expired: bool,
}

/// A process on a machine: `boot:<boot id>/pid:<pid>/start:<start time>`,
/// unique on the machine across reboots and pid reuse (Linux `/proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId(String);

/// Whether the process that holds a lease is alive, seen from this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running now.
    Alive,
    /// Gone: exited, or the machine rebooted since.
    Dead,
    /// Cannot tell (no `/proc`, or another machine's id): wait for expiry.
    Unknown,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId(format!(
            "boot:{}/pid:{pid}/start:{}",
            boot_id().unwrap_or_default(),
            start_time(pid).unwrap_or_default()
        ))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads the stored form back (any text: an unknown form is `Unknown`).
    pub fn from_stored(text: String) -> ProcessId {
        ProcessId(text)
    }

    /// Whether this process is alive, judged on this machine: only valid
    /// for a lease of this node (`node_id` names one machine).
    pub fn liveness(&self) -> Liveness {
        let mut parts = self.0.split('/');
        let (Some(boot), Some(pid), Some(start)) = (
            parts.next().and_then(|part| part.strip_prefix("boot:")),
            parts
                .next()
                .and_then(|part| part.strip_prefix("pid:"))
                .and_then(|pid| pid.parse::<u32>().ok()),
            parts.next().and_then(|part| part.strip_prefix("start:")),
        ) else {
            return Liveness::Unknown;
        };
        let Some(our_boot) = boot_id() else {
            return Liveness::Unknown;
        };
        if boot.is_empty() || start.is_empty() {
            return Liveness::Unknown;
        }
        if boot != our_boot {
            // The same node, booted since: every process of that boot is gone.
            return Liveness::Dead;
        }
        match start_time(pid) {
            Some(now) if now == start => Liveness::Alive,
            // No such pid, or the pid was reused by a later process.
            Some(_) | None => Liveness::Dead,
        }
    }
}

/// The kernel's boot id (changes at every boot).
fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks
/// since boot (with the pid, unique for the boot).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = ProcessId::current();
        assert!(me.as_str().starts_with("boot:"), "{me:?}");
        assert_eq!(me.liveness(), Liveness::Alive);
        // A child that has exited: same boot, its pid gone (or reused later).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let boot = boot_id().unwrap();
        let gone = ProcessId::from_stored(format!(
            "boot:{boot}/pid:{pid}/start:{}",
            start.unwrap_or_else(|| "1".to_owned())
        ));
        assert_eq!(gone.liveness(), Liveness::Dead);
        // Another boot of this machine: dead whatever the pid.
        let rebooted = ProcessId::from_stored(format!(
            "boot:00000000-0000-0000-0000-000000000000/pid:{}/start:1",
            std::process::id()
        ));
        assert_eq!(rebooted.liveness(), Liveness::Dead);
        assert_eq!(
            ProcessId::from_stored("something else".to_owned()).liveness(),
            Liveness::Unknown
        );
    }
}
