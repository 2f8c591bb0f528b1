//! The Debian package for the Pi (aarch64): contents, control data, maintainer scripts, the
//! hardened systemd unit (checked by `systemd-analyze verify`, and scored by `systemd-analyze
//! security`), the configuration postinst makes with a random token (run into a scratch root
//! through `DPKG_ROOT`, checked by the node itself) and the binary (an aarch64 ELF within the
//! size budget). On the host (amd64, as root): install, upgrades (also from the layout that
//! shipped the configuration as a conffile), removal and purge for real.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::node::{binary, workspace};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The highest exposure `systemd-analyze security` may give the packaged unit ("OK" band).
const MAX_EXPOSURE: f64 = 2.0;

/// The `token = "..."` value of a configuration file.
fn token_of(config: &str) -> Option<String> {
    config.lines().find_map(|l| {
        l.strip_prefix("token = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .map(str::to_owned)
    })
}

fn is_token(t: &str) -> bool {
    t.len() == 64
        && t.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Runs a maintainer script of the extracted package `r` (`DEBIAN/<script>`) with `args` into
/// the scratch root `root` (`DPKG_ROOT`, as dpkg sets it for a chrootless install).
fn maintainer_script(r: &Path, script: &str, root: &Path, args: &[&str]) -> String {
    run(Command::new("sh")
        .arg(r.join("DEBIAN").join(script))
        .args(args)
        .env("DPKG_ROOT", root))
}

/// postinst's configuration, run into a scratch root: made once from the template with a
/// random 64-hex-digit token, mode 0640, group sutantra (from the root's own /etc/group), the
/// viewer URL printed; kept byte for byte by a second run (an upgrade); valid for the node
/// (while the template alone, without the token, is refused); removed by postrm purge.
fn postinst_makes_the_config(r: &Path) {
    let root = tempfile::tempdir().expect("scratch root");
    let s = root.path();
    std::fs::create_dir_all(s.join("usr/share/sutantra")).expect("mkdir");
    std::fs::create_dir_all(s.join("etc")).expect("mkdir");
    let template = r.join("usr/share/sutantra/config.toml");
    std::fs::copy(&template, s.join("usr/share/sutantra/config.toml")).expect("template");
    // The scratch root's group database: the test's own group when not root (chgrp to a group
    // one is in needs no privilege), so the test also runs unprivileged.
    let gid = std::fs::metadata(s).expect("scratch root").gid();
    let gid = if gid == 0 { 4242 } else { gid };
    std::fs::write(
        s.join("etc/group"),
        format!("root:x:0:\nsutantra:x:{gid}:\n"),
    )
    .expect("etc/group");

    let printed = maintainer_script(r, "postinst", s, &["configure"]);
    println!(
        "postinst (first install, DPKG_ROOT={}):\n{printed}",
        s.display()
    );
    let config = s.join("etc/sutantra/config.toml");
    let text = std::fs::read_to_string(&config).expect("postinst made the config");
    let token = token_of(&text).unwrap_or_else(|| panic!("no token line in:\n{text}"));
    assert!(
        is_token(&token),
        "token {token:?}: 32 random bytes as 64 hex digits"
    );
    let meta = std::fs::metadata(&config).expect("config");
    assert_eq!(meta.mode() & 0o7777, 0o640, "config mode");
    assert_eq!(
        meta.gid(),
        gid,
        "config group: sutantra of the scratch root"
    );
    assert!(
        printed.contains(&format!(":8080/#token={token}")),
        "postinst prints the viewer URL with the token:\n{printed}"
    );
    assert!(
        !text.contains("<generated at install>"),
        "the token placeholder is filled in"
    );
    println!(
        "generated config: token {token}, mode {:o}, gid {gid}",
        meta.mode() & 0o7777
    );

    // An upgrade (and a reconfigure) keeps the file as it is.
    let again = maintainer_script(r, "postinst", s, &["configure", "0.1.0"]);
    assert_eq!(
        std::fs::read_to_string(&config).expect("config kept"),
        text,
        "the second postinst run changed the config"
    );
    assert!(
        !again.contains("#token="),
        "no new token on upgrade: {again}"
    );

    // The node accepts what postinst made, and refuses the template alone: the listen address
    // is every interface, which needs the token.
    let valid = run(Command::new(binary())
        .args(["config", "validate"])
        .arg(&config));
    println!("{}", valid.trim());
    let bare = Command::new(binary())
        .args(["config", "validate"])
        .arg(&template)
        .output()
        .expect("config validate");
    assert_eq!(
        bare.status.code(),
        Some(2),
        "the template without a token must be refused: {}",
        String::from_utf8_lossy(&bare.stderr)
    );
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("token"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );

    maintainer_script(r, "postrm", s, &["purge"]);
    assert!(!config.exists(), "purge removes the config");
    assert!(!s.join("etc/sutantra").exists(), "and its empty directory");
}

/// `systemd-analyze security --offline=true` on the unit: prints the whole table and checks the
/// overall exposure (0 best .. 10 worst) is at most `MAX_EXPOSURE`. Works without systemd as PID 1.
fn exposure_of(unit: &Path) -> f64 {
    let report = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit));
    println!(
        "systemd-analyze security --offline=true {}:\n{report}",
        unit.display()
    );
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"))
}

#[test]
fn aarch64_deb_has_binary_unit_config_and_scripts() {
    // CPU-heavy work without a node: hold the node lock anyway, so it never runs beside an
    // emulated board (TCG guests need both cores to keep 30 fps).
    let _lock = crate::node::hold_node_lock();
    let ws = workspace();
    // Reuses the cross-built binary when the emulated-board test already made it.
    let prebuilt = ws
        .join("target/aarch64-unknown-linux-gnu/release/sutantra")
        .exists();
    let out = run(Command::new(ws.join("cross/package-deb.sh"))
        .arg("aarch64-unknown-linux-gnu")
        .env("SUTANTRA_PREBUILT", if prebuilt { "1" } else { "0" })
        .current_dir(&ws));
    let deb = ws.join(out.lines().last().expect("package path").trim());
    assert!(deb.exists(), "{deb:?}");

    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/sutantra",
        "./lib/systemd/system/sutantra.service",
        "./usr/share/sutantra/config.toml",
        "./usr/share/doc/sutantra/README.md",
        "./usr/share/doc/sutantra/ARCHITECTURE.md",
        "./usr/share/doc/sutantra/docs/configuration.md",
    ] {
        assert!(
            listing.contains(path),
            "{path} missing from the package:\n{listing}"
        );
    }
    assert!(
        !listing.contains("./etc/sutantra"),
        "the configuration is made by postinst, not shipped in /etc:\n{listing}"
    );
    let control = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(control.contains("Architecture: arm64"), "{control}");
    assert!(control.contains("Depends: libvpx7"), "{control}");

    let root = tempfile::tempdir().expect("tempdir");
    run(Command::new("dpkg-deb")
        .arg("-R")
        .arg(&deb)
        .arg(root.path()));
    let r = root.path();
    // No conffile: a file holding a generated token would make dpkg ask on every upgrade.
    let conffiles = std::fs::read_to_string(r.join("DEBIAN/conffiles")).unwrap_or_default();
    assert!(
        !conffiles.contains("/etc/sutantra/config.toml"),
        "config.toml must not be a conffile: {conffiles}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let p = r.join("DEBIAN").join(script);
        run(Command::new("sh").arg("-n").arg(&p));
        let text = std::fs::read_to_string(&p).expect("script");
        assert!(
            !text.contains("#DEBHELPER#"),
            "{script} still has the debhelper token"
        );
    }
    let postinst = std::fs::read_to_string(r.join("DEBIAN/postinst")).expect("postinst");
    assert!(
        postinst.contains("adduser --system"),
        "postinst creates the user"
    );
    let postrm = std::fs::read_to_string(r.join("DEBIAN/postrm")).expect("postrm");
    assert!(
        !postrm.contains("rm -rf /var/lib/sutantra"),
        "removal must keep the key and the outbox"
    );

    // The unit: hardened, watchdog, and valid for systemd (ExecStart pointed at the extracted
    // binary so the check does not need it installed).
    let unit_text =
        std::fs::read_to_string(r.join("lib/systemd/system/sutantra.service")).expect("unit");
    for directive in [
        "User=sutantra",
        "SupplementaryGroups=video gpio",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=sutantra",
        "WatchdogSec=",
        "Restart=always",
        "RestartPreventExitStatus=2",
        "Type=notify",
        "UMask=0077",
        "LimitNOFILE=",
        "TasksMax=",
        "SystemCallFilter=~@privileged @resources",
    ] {
        assert!(unit_text.contains(directive), "unit lacks {directive}");
    }
    let verify_dir = r.join("verify");
    std::fs::create_dir_all(&verify_dir).expect("mkdir");
    let unit = verify_dir.join("sutantra.service");
    std::fs::write(
        &unit,
        unit_text.replace(
            "/usr/bin/sutantra",
            &r.join("usr/bin/sutantra").to_string_lossy(),
        ),
    )
    .expect("write unit");
    run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    let exposure = exposure_of(&unit);
    println!("sutantra.service: overall exposure {exposure:.1} (at most {MAX_EXPOSURE:.1})");
    assert!(
        exposure <= MAX_EXPOSURE,
        "systemd-analyze security: exposure {exposure} > {MAX_EXPOSURE}"
    );

    // The configuration postinst makes: a random token, mode 0640, valid for the node.
    postinst_makes_the_config(r);

    // An aarch64 ELF, within the 12 MiB budget for the Pi.
    let bin = std::fs::read(r.join("usr/bin/sutantra")).expect("binary");
    assert_eq!(&bin[..4], b"\x7fELF");
    assert_eq!(
        u16::from_le_bytes([bin[18], bin[19]]),
        0xB7,
        "e_machine is AArch64"
    );
    let mib = bin.len() as f64 / (1024.0 * 1024.0);
    println!(
        "aarch64 deb: {}, stripped binary {mib:.1} MiB",
        deb.display()
    );
    assert!(mib <= 12.0, "binary is {mib:.1} MiB");
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn build_host_deb(version: &str) -> std::path::PathBuf {
    let ws = workspace();
    let out = run(Command::new(ws.join("cross/package-deb.sh"))
        .arg("x86_64-unknown-linux-gnu")
        .env("SUTANTRA_PREBUILT", "1")
        .env("SUTANTRA_DEB_VERSION", version)
        .current_dir(&ws));
    ws.join(out.lines().last().expect("package path").trim())
}

/// A package in the layout of the versions before the generated token: the commented file
/// shipped as the conffile /etc/sutantra/config.toml (every interface, no token), made from
/// `deb` (its postinst finds the file there and leaves it alone).
fn old_layout_deb(deb: &Path, version: &str, dir: &Path) -> std::path::PathBuf {
    let tree = dir.join(format!("old-{version}"));
    run(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    std::fs::create_dir_all(tree.join("etc/sutantra")).expect("mkdir");
    std::fs::rename(
        tree.join("usr/share/sutantra/config.toml"),
        tree.join("etc/sutantra/config.toml"),
    )
    .expect("move the config to /etc");
    std::fs::remove_dir(tree.join("usr/share/sutantra")).expect("rmdir");
    std::fs::write(tree.join("DEBIAN/conffiles"), "/etc/sutantra/config.toml\n")
        .expect("conffiles");
    let control = std::fs::read_to_string(tree.join("DEBIAN/control")).expect("control");
    let control: String = control
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(tree.join("DEBIAN/control"), control).expect("control");
    let out = dir.join(format!("sutantra_{version}_old.deb"));
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg("--build")
        .arg(&tree)
        .arg(&out));
    out
}

/// `dpkg -i`, returning what the maintainer scripts printed (stdout and stderr).
fn dpkg_install(deb: &Path) -> String {
    let out = Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .output()
        .expect("run dpkg -i");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dpkg -i {deb:?} failed:\n{text}");
    text
}

/// The configuration as postinst makes it: a token, mode 0640, owner root, group sutantra.
fn assert_generated_config(config: &Path, printed: &str) -> String {
    let text = std::fs::read_to_string(config).expect("config");
    let token = token_of(&text).unwrap_or_else(|| panic!("no token line in:\n{text}"));
    assert!(is_token(&token), "token {token:?}");
    let meta = std::fs::metadata(config).expect("config");
    assert_eq!(meta.mode() & 0o7777, 0o640, "config mode");
    assert_eq!(meta.uid(), 0, "config owner");
    let group = run(Command::new("stat").args(["-c", "%G"]).arg(config));
    assert_eq!(group.trim(), "sutantra", "config group");
    assert!(
        printed.contains(&format!(":8080/#token={token}")),
        "postinst prints the viewer URL with the token:\n{printed}"
    );
    run(Command::new("/usr/bin/sutantra")
        .args(["config", "validate"])
        .arg(config));
    text
}

/// Installs the host (amd64) package for real, as CI runs as root on a throwaway machine.
/// From the old layout (the configuration a conffile, without a token), an upgrade makes an
/// unedited file anew with a token and keeps an edited one (with a warning when this version
/// refuses it). Install, upgrade and remove keep the operator's configuration, the node key and
/// the outbox; purge removes the configuration and the user and still keeps the state directory.
/// (No systemd runs as PID 1 here, so the maintainer scripts skip starting the service.)
#[test]
fn amd64_deb_install_upgrade_remove_keep_config_key_and_outbox() {
    // CPU-heavy work without a node: hold the node lock anyway, so it never runs beside an
    // emulated board (TCG guests need both cores to keep 30 fps).
    let _lock = crate::node::hold_node_lock();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    assert!(
        root,
        "this test installs a package: run the suite as root (scripts/test.sh)"
    );
    let state = Path::new("/var/lib/sutantra");
    let config = Path::new("/etc/sutantra/config.toml");
    assert!(
        !dpkg_installed("sutantra") && !state.exists() && !config.exists(),
        "a sutantra installation already exists on this machine; the test installs and purges \
         its own, so it refuses to touch that one"
    );
    let v1 = build_host_deb("0.1.0");
    let v2 = build_host_deb("0.1.1");
    let work = tempfile::tempdir().expect("tempdir");
    let old = old_layout_deb(&v1, "0.0.9", work.path());

    // 1. The old layout, the file edited by the operator: the upgrade keeps it as it is, and
    // warns that this version refuses it (every interface, no token).
    dpkg_install(&old);
    let mut edited = std::fs::read_to_string(config).expect("old conffile");
    assert!(token_of(&edited).is_none(), "the old default has no token");
    edited.push_str("\n# edited by the operator\n");
    std::fs::write(config, &edited).expect("edit config");
    let printed = dpkg_install(&v1);
    println!("upgrade from the old layout (edited):\n{printed}");
    assert_eq!(
        std::fs::read_to_string(config).expect("config kept"),
        edited,
        "an edited old conffile must be kept"
    );
    assert!(
        printed.contains("WARNING") && printed.contains("http.listen"),
        "postinst warns that the kept file is refused:\n{printed}"
    );
    run(Command::new("dpkg").args(["-P", "sutantra"]));
    assert!(!config.exists(), "purge removes the old conffile too");

    // 2. The old layout, unedited: the upgrade makes it anew with a token.
    dpkg_install(&old);
    let printed = dpkg_install(&v1);
    println!("upgrade from the old layout (unedited):\n{printed}");
    assert!(printed.contains("unedited default"), "{printed}");
    assert_generated_config(config, &printed);
    run(Command::new("dpkg").args(["-P", "sutantra"]));
    assert!(!config.exists(), "purge removes the configuration");

    // 3. A fresh install.
    let printed = dpkg_install(&v1);
    println!("fresh install:\n{printed}");
    assert!(dpkg_installed("sutantra"));
    let generated = assert_generated_config(config, &printed);
    let version = run(Command::new("/usr/bin/sutantra").arg("--version"));
    assert!(version.starts_with("sutantra"), "{version}");
    let groups = run(Command::new("id").args(["-nG", "sutantra"]));
    assert!(
        groups.contains("video") && groups.contains("gpio"),
        "groups: {groups}"
    );
    let meta = std::fs::metadata(state).expect("state dir");
    assert_eq!(meta.mode() & 0o777, 0o700, "state dir mode");

    // The operator's state: a node key (made by the node itself), an outbox, an edited config.
    let shown = run(Command::new("/usr/bin/sutantra").args([
        "keys",
        "show",
        "--json",
        "--data-dir",
        "/var/lib/sutantra",
    ]));
    assert!(shown.contains("public_key"), "{shown}");
    let key = std::fs::read(state.join("node.key")).expect("node key");
    let outbox = state.join("node.redb");
    std::fs::write(&outbox, b"committed attestations").expect("outbox stand-in");
    let mut edited = generated;
    edited.push_str("\n# edited by the operator\n");
    std::fs::write(config, &edited).expect("edit config");

    let kept = |when: &str| {
        assert_eq!(
            std::fs::read_to_string(config).expect("config kept"),
            edited,
            "{when}: the operator's config changed"
        );
        let meta = std::fs::metadata(config).expect("config");
        assert_eq!(meta.mode() & 0o7777, 0o640, "{when}: config mode");
        assert_eq!(
            std::fs::read(state.join("node.key")).expect("node key kept"),
            key,
            "{when}: the node key changed"
        );
        assert_eq!(
            std::fs::read(&outbox).expect("outbox kept"),
            b"committed attestations",
            "{when}: outbox changed"
        );
    };

    let printed = dpkg_install(&v2);
    let status = run(Command::new("dpkg-query").args(["-W", "-f=${Version}", "sutantra"]));
    assert_eq!(status, "0.1.1", "upgraded");
    assert!(
        !printed.contains("#token="),
        "no new token on upgrade:\n{printed}"
    );
    kept("upgrade");

    run(Command::new("dpkg").args(["-r", "sutantra"]));
    assert!(!Path::new("/usr/bin/sutantra").exists(), "binary removed");
    kept("remove");

    run(Command::new("dpkg").args(["-P", "sutantra"]));
    assert!(!config.exists(), "purge removes the configuration");
    assert!(state.join("node.key").exists(), "purge keeps the node key");
    assert!(outbox.exists(), "purge keeps the outbox");
    let user = Command::new("id").arg("sutantra").output().expect("id");
    assert!(!user.status.success(), "purge removes the user");
    // Leave the machine as it was.
    std::fs::remove_dir_all(state).expect("clean up the state dir");
    let _ = std::fs::remove_dir("/etc/sutantra");
    println!(
        "amd64 deb: old layout migrated (edited kept, unedited made anew with a token); \
         install made a token; upgrade and remove kept config, key and outbox; purge kept the key"
    );
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
