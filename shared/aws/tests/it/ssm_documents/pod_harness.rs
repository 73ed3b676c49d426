//! A stand-in for a Kubernetes pod on a node, for the pod documents: processes placed in a
//! cgroup whose path names a made-up pod UID (and a container id), the way the kubelet lays
//! them out (cgroupfs `.../kubepods/burstable/pod<uid>/<container id>` or systemd
//! `.../kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope`), optionally in a
//! network namespace of their own. The cgroup goes in the first writable hierarchy of this
//! machine (cgroup v2, else the v1 `pids` or `cpu` one); when none is writable the test fails
//! saying so, it never skips.

use super::*;

/// How the kubelet names the pod's cgroup.
#[derive(Clone, Copy)]
pub(super) enum Layout {
    Cgroupfs,
    Systemd,
}

/// A pod: its UID, one container id, the cgroup directories made for it, and its processes
/// (killed, and the cgroups removed, on drop).
pub(super) struct Pod {
    pub(super) uid: String,
    pub(super) container: String,
    /// `<mount>/eb-test-<pid>-<n>`: removed with everything below it on drop.
    base: PathBuf,
    /// The container's cgroup directory.
    pub(super) leaf: PathBuf,
    /// The (base, leaf) of a v1 memory cgroup made by [`Pod::limit_memory`].
    memory: Option<(PathBuf, PathBuf)>,
    children: Vec<Child>,
}

/// The cgroup mounts of this machine, most wanted first: cgroup2, then the v1 `pids` and `cpu`.
fn cgroup_mounts() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, kind, options, ..] = fields[..] else {
            continue;
        };
        if kind == "cgroup2" {
            v2.push(PathBuf::from(dir));
        } else if kind == "cgroup" && options.split(',').any(|o| o == "pids" || o == "cpu") {
            v1.push(PathBuf::from(dir));
        }
    }
    v2.extend(v1);
    v2
}

impl Pod {
    /// A pod with one container process, `sleep 600`, in a network namespace when given.
    pub(super) fn new(layout: Layout, ns: Option<&Netns>) -> Pod {
        Pod::with(layout, ns, &["sleep", "600"])
    }

    /// A pod whose container's main process runs `argv`.
    pub(super) fn with(layout: Layout, ns: Option<&Netns>, argv: &[&str]) -> Pod {
        let n = unique();
        let uid = format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), n, n);
        let container = format!(
            "{:064x}",
            u128::from(std::process::id()) << 32 | u128::from(n)
        );
        let mut errors = Vec::new();
        for mount in cgroup_mounts() {
            let base = mount.join(format!("eb-test-{}-{n}", std::process::id()));
            let leaf = match layout {
                Layout::Cgroupfs => base.join(format!("kubepods/burstable/pod{uid}/{container}")),
                Layout::Systemd => base.join(format!(
                    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{container}.scope",
                    uid.replace('-', "_")
                )),
            };
            if let Err(e) = std::fs::create_dir_all(&leaf) {
                errors.push(format!("{}: {e}", leaf.display()));
                continue;
            }
            let mut pod = Pod {
                uid: uid.clone(),
                container: container.clone(),
                base,
                leaf,
                memory: None,
                children: Vec::new(),
            };
            match pod.try_start(ns, argv) {
                Ok(()) => return pod,
                Err(e) => errors.push(e),
            }
        }
        panic!(
            "no writable cgroup hierarchy to place a pod's process in (the pod documents find pods \
             by their cgroup): tried {errors:?}; run the tests as root with a writable /sys/fs/cgroup \
             (cgroup v2, or the v1 pids or cpu hierarchy)"
        );
    }

    fn try_start(&mut self, ns: Option<&Netns>, argv: &[&str]) -> Result<(), String> {
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("{argv:?}: {e}"))?;
        let pid = child.id();
        self.children.push(child);
        std::fs::write(self.leaf.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("{}: {e}", self.leaf.join("cgroup.procs").display()))
    }

    /// Give the container a memory limit of `bytes`: `memory.max` on cgroup v2 (the memory
    /// controller enabled down the pod's path), else a v1 memory cgroup of the same path that
    /// the container's processes move into. Fails, saying why, when neither is possible.
    pub(super) fn limit_memory(&mut self, bytes: u64) {
        let v2 = || -> Result<(), String> {
            let mount = self.base.parent().unwrap();
            let mut dir = mount.to_path_buf();
            for part in self.leaf.strip_prefix(mount).unwrap().components() {
                let control = dir.join("cgroup.subtree_control");
                std::fs::write(&control, "+memory")
                    .map_err(|e| format!("{}: {e}", control.display()))?;
                dir.push(part);
            }
            let max = self.leaf.join("memory.max");
            std::fs::write(&max, bytes.to_string()).map_err(|e| format!("{}: {e}", max.display()))
        };
        let v2 = match v2() {
            Ok(()) => return,
            Err(e) => e,
        };
        let relative = self
            .leaf
            .strip_prefix(self.base.parent().unwrap())
            .unwrap()
            .to_path_buf();
        let base_name = self.base.file_name().unwrap().to_owned();
        let v1 = || -> Result<(PathBuf, PathBuf), String> {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
            let mount = mounts
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == "memory"))
                .map(|f| PathBuf::from(f[1]))
                .ok_or("no cgroup v1 memory hierarchy is mounted")?;
            let leaf = mount.join(&relative);
            std::fs::create_dir_all(&leaf).map_err(|e| format!("{}: {e}", leaf.display()))?;
            let limit = leaf.join("memory.limit_in_bytes");
            std::fs::write(&limit, bytes.to_string())
                .map_err(|e| format!("{}: {e}", limit.display()))?;
            let procs = std::fs::read_to_string(self.leaf.join("cgroup.procs")).unwrap();
            for pid in procs.split_whitespace() {
                std::fs::write(leaf.join("cgroup.procs"), pid)
                    .map_err(|e| format!("{}: {e}", leaf.join("cgroup.procs").display()))?;
            }
            Ok((mount.join(&base_name), leaf))
        };
        match v1() {
            Ok(made) => self.memory = Some(made),
            Err(v1) => panic!(
                "cannot give the stand-in pod a memory limit: cgroup v2 ({v2}), cgroup v1 ({v1}); \
                 run the tests as root with a writable cgroup memory controller"
            ),
        }
    }

    /// The first process of the container.
    pub(super) fn main(&mut self) -> &mut Child {
        &mut self.children[0]
    }

    pub(super) fn pid(&self) -> u32 {
        self.children[0].id()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // what the container's processes started (their children stay in its cgroup)
        let procs = std::fs::read_to_string(self.leaf.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        // deepest first: a cgroup is removed once its processes are gone
        let mut dirs = Vec::new();
        let trees = [
            Some((self.base.clone(), self.leaf.clone())),
            self.memory.clone(),
        ];
        for (base, leaf) in trees.into_iter().flatten() {
            let mut dir = leaf;
            while dir.starts_with(&base) {
                dirs.push(dir.clone());
                if !dir.pop() {
                    break;
                }
            }
        }
        for dir in dirs {
            poll(Duration::from_secs(5), || {
                std::fs::remove_dir(&dir).is_ok() || !dir.exists()
            });
        }
    }
}

/// The run token of the active fault of document `name` on `pod`, if any.
pub(super) fn pod_active(case: &Case, name: &str, pod: &Pod) -> Option<String> {
    std::fs::read_to_string(case.state().join(format!("{name}.{}.active", pod.uid)))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The host's own firewall rules (the tests run in the host's network namespace).
pub(super) fn host_iptables() -> String {
    run(
        "sh",
        &["-c", "iptables -w -S; ip6tables -w -S 2>/dev/null || true"],
    )
}

/// Whether a bind mount (a held network namespace) under `dir` is still mounted.
pub(super) fn mounted_under(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|p| Path::new(p).starts_with(dir))
        })
}
