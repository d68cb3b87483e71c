//! The store's guard against a full disk, and its bounded flush.
//!
//! sled 0.34 does not survive `ENOSPC`: after an I/O error its flush never
//! returns, and every later write queues behind it. So sled must never meet
//! a full disk. As etcd does with its space quota, the engine keeps a
//! reserve of free space (`store.min_free_bytes`) under the data dir,
//! measured with `statvfs`:
//!
//! - below the reserve, new jobs (and programs) are refused with
//!   [`DiskFull`]; results and settlement steps of jobs already accepted
//!   are still written, out of the reserve;
//! - below half the reserve (the floor), every write is refused before it
//!   reaches sled.
//!
//! The figure is refreshed by the writer before every group, by admission
//! when it is older than [`STALE_AFTER`], and by the supervisor every
//! second, so the engine accepts jobs again by itself once space returns.
//!
//! If sled fails anyway (an I/O error, or a flush that does not return
//! within [`FLUSH_TIMEOUT`]), the store is marked broken: every later write
//! is refused at once, reads go on, and the engine can still stop.
//! Flushes run on a thread of their own ([`Flusher`]) so that nobody waits
//! on a hung one longer than the timeout.

use crossbeam_channel::{Receiver, Sender};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Admission measures the free space again when the last figure is older.
pub(crate) const STALE_AFTER: Duration = Duration::from_millis(100);

/// The longest a flush may take before the store is declared broken. A
/// healthy flush of the largest group takes well under a second.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes a write is assumed to take on disk per byte of record: sled
/// writes a record in its log (a large one as a blob file of its own), and
/// its segment cleaner copies live pages again. Measured on a tmpfs: about
/// 2.7 bytes per byte of 256 KiB inputs.
const AMPLIFICATION: u64 = 3;

/// Bytes assumed on disk for each write besides its record (page headers,
/// the job entry, the segment it may open).
const PER_WRITE_OVERHEAD: u64 = 4096;

/// New jobs are refused: the free space under the data dir is below the
/// reserve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "disk full: {free} bytes free under {dir}, reserve {reserve} (store.min_free_bytes): \
     new jobs are refused until space is freed"
)]
pub struct DiskFull {
    /// Free bytes (available to the engine) when it was measured. A new
    /// job is refused when writing it would leave less than the reserve,
    /// so this may be a little above it.
    pub free: u64,
    /// The store's directory.
    pub dir: String,
    /// `store.min_free_bytes`.
    pub reserve: u64,
}

/// What the guard knows of the disk, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpaceState {
    /// Free bytes at the last measure.
    pub(crate) free: u64,
    /// Whether that is below the reserve (new jobs are refused).
    pub(crate) full: bool,
    /// Whether sled failed and the store refuses every write.
    pub(crate) broken: bool,
}

/// The free-space guard of one store.
#[derive(Debug)]
pub(crate) struct Space {
    dir: PathBuf,
    reserve: u64,
    free: AtomicU64,
    full: AtomicBool,
    /// When `free` was measured, in µs since `epoch`.
    measured_at: AtomicU64,
    epoch: Instant,
    /// Why the store is broken, once it is.
    broken: OnceLock<String>,
}

impl Space {
    /// A guard for the store in `dir` keeping `reserve` bytes free. It
    /// measures at once.
    pub(crate) fn new(dir: &Path, reserve: u64) -> Space {
        let space = Space {
            dir: dir.to_owned(),
            reserve,
            free: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
            measured_at: AtomicU64::new(0),
            epoch: Instant::now(),
            broken: OnceLock::new(),
        };
        space.measure();
        space
    }

    /// Measures the free space now and returns it. A directory that cannot
    /// be measured is taken as having room (the write itself will tell).
    pub(crate) fn measure(&self) -> u64 {
        let free = match free_bytes(&self.dir) {
            Ok(free) => free,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), %err, "cannot measure the free space");
                u64::MAX
            }
        };
        self.free.store(free, Ordering::Relaxed);
        self.measured_at.store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        let full = free < self.reserve;
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::warn!(
                    free, reserve = self.reserve, dir = %self.dir.display(),
                    "disk full: new jobs are refused until space is freed"
                );
            } else {
                tracing::warn!(free, reserve = self.reserve, dir = %self.dir.display(), "disk space is back: new jobs are accepted");
            }
        }
        free
    }

    /// Whether a new job (or program) of `bytes` may be written: the store
    /// is not broken and writing it would not take the free space, measured
    /// at most [`STALE_AFTER`] ago, below the reserve (the test the writer
    /// makes again when it writes it).
    pub(crate) fn admit(&self, bytes: usize) -> Result<(), super::StoreError> {
        self.check_broken()?;
        let age = (self.epoch.elapsed().as_micros() as u64).saturating_sub(self.measured_at.load(Ordering::Relaxed));
        let free =
            if age >= STALE_AFTER.as_micros() as u64 { self.measure() } else { self.free.load(Ordering::Relaxed) };
        if Space::cost(bytes) > self.admit_budget(free) {
            return Err(self.disk_full(free).into());
        }
        Ok(())
    }

    /// What a write of `bytes` is assumed to take on disk.
    pub(crate) fn cost(bytes: usize) -> u64 {
        (bytes as u64).saturating_mul(AMPLIFICATION).saturating_add(PER_WRITE_OVERHEAD)
    }

    /// Bytes that may be written out of `free` for writes that must go on
    /// (results, settlement steps): everything above the floor.
    pub(crate) fn budget(&self, free: u64) -> u64 {
        free.saturating_sub(self.floor())
    }

    /// Bytes that may be written out of `free` for new jobs: everything
    /// above the reserve.
    pub(crate) fn admit_budget(&self, free: u64) -> u64 {
        free.saturating_sub(self.reserve)
    }

    /// Half the reserve: below it nothing is written.
    fn floor(&self) -> u64 {
        self.reserve / 2
    }

    /// The refusal for `free` bytes.
    pub(crate) fn disk_full(&self, free: u64) -> DiskFull {
        DiskFull { free, dir: self.dir.display().to_string(), reserve: self.reserve }
    }

    /// Marks the store broken (the first reason stays).
    pub(crate) fn set_broken(&self, reason: String) {
        if self.broken.set(reason.clone()).is_ok() {
            tracing::error!(%reason, "the store failed: it refuses every write until the engine restarts");
        }
    }

    /// Refuses if the store is broken.
    pub(crate) fn check_broken(&self) -> Result<(), super::StoreError> {
        match self.broken.get() {
            Some(reason) => Err(super::StoreError::Broken(reason.clone())),
            None => Ok(()),
        }
    }

    /// Whether the store is broken.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.get().is_some()
    }

    /// The last figures.
    pub(crate) fn state(&self) -> SpaceState {
        SpaceState {
            free: self.free.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
            broken: self.is_broken(),
        }
    }
}

/// Bytes available to an unprivileged writer on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and
    // `stats` is a plain C struct statvfs fills in.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

type FlushReply = Sender<Result<(), String>>;

/// Flushes sled on a thread of its own, so that a flush that never returns
/// (sled 0.34 after an I/O error) holds up nobody longer than
/// [`FLUSH_TIMEOUT`]: the store is then marked broken, and that thread and
/// its database handle are left behind.
#[derive(Debug, Clone)]
pub(crate) struct Flusher {
    tx: Sender<FlushReply>,
    space: Arc<Space>,
}

impl Flusher {
    /// Starts the flush thread for `db`.
    pub(crate) fn spawn(db: sled::Db, space: Arc<Space>) -> Flusher {
        let (tx, rx) = crossbeam_channel::unbounded::<FlushReply>();
        let spawned = std::thread::Builder::new().name("store-flush".into()).spawn(move || flush_loop(&db, &rx));
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the store flush thread");
        }
        Flusher { tx, space }
    }

    /// Flushes everything written so far, waiting at most [`FLUSH_TIMEOUT`].
    /// A failed or timed-out flush marks the store broken.
    pub(crate) fn flush(&self) -> Result<(), super::StoreError> {
        self.flush_within(FLUSH_TIMEOUT)
    }

    fn flush_within(&self, limit: Duration) -> Result<(), super::StoreError> {
        self.space.check_broken()?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.tx.send(reply).is_err() {
            return Err(super::StoreError::Closed);
        }
        let reason = match answer.recv_timeout(limit) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => format!("flush failed: {err}"),
            Err(_) => format!("flush did not return within {} s", limit.as_secs_f64()),
        };
        self.space.set_broken(reason.clone());
        Err(super::StoreError::Broken(reason))
    }
}

fn flush_loop(db: &sled::Db, rx: &Receiver<FlushReply>) {
    while let Ok(reply) = rx.recv() {
        let result = db.flush().map(drop).map_err(|err| err.to_string());
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_reserve_new_jobs_are_refused_with_the_figures() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let roomy = Space::new(dir.path(), 0);
        roomy.admit(1000).unwrap();
        assert_eq!(roomy.state(), SpaceState { free: roomy.state().free, full: false, broken: false });
        let tight = Space::new(dir.path(), u64::MAX);
        let err = tight.admit(0).unwrap_err();
        let super::super::StoreError::DiskFull(full) = err else { panic!("{err}") };
        assert_eq!((full.dir.as_str(), full.reserve), (dir.path().to_str().unwrap(), u64::MAX));
        assert!(full.free > 0 && tight.state().full);
        assert_eq!(
            full.to_string(),
            format!(
                "disk full: {} bytes free under {}, reserve {} (store.min_free_bytes): \
                 new jobs are refused until space is freed",
                full.free,
                dir.path().display(),
                u64::MAX
            )
        );
    }

    #[test]
    fn the_floor_is_half_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(dir.path(), 1000);
        assert_eq!((space.budget(1600), space.admit_budget(1600)), (1100, 600));
        assert_eq!((space.budget(400), space.admit_budget(400)), (0, 0));
        assert_eq!(Space::cost(100), 4396);
    }

    #[test]
    fn a_broken_store_refuses_everything_with_its_first_reason() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(dir.path(), 0);
        space.set_broken("flush failed: No space left on device".into());
        space.set_broken("second".into());
        let err = space.admit(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the store failed (flush failed: No space left on device): it refuses writes until the engine restarts"
        );
        assert!(space.state().broken);
    }

    #[test]
    fn a_flush_that_does_not_return_in_time_breaks_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let space = Arc::new(Space::new(dir.path(), 0));
        // A flusher whose thread is busy: its requests are never answered.
        let (tx, _rx) = crossbeam_channel::unbounded::<FlushReply>();
        let hung = Flusher { tx, space: Arc::clone(&space) };
        let err = hung.flush_within(Duration::from_millis(50)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the store failed (flush did not return within 0.05 s): it refuses writes until the engine restarts"
        );
        // From now on nobody waits: the next flush is refused at once.
        let working = Flusher::spawn(db, Arc::clone(&space));
        let start = Instant::now();
        assert!(working.flush().is_err());
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
