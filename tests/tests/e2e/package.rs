//! The Debian package for the Pi (aarch64): contents, control data, maintainer scripts, the
//! hardened systemd unit (checked by `systemd-analyze verify`), the packaged configuration (checked
//! by the node itself) and the binary (an aarch64 ELF within the size budget).

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

#[test]
fn aarch64_deb_has_binary_unit_config_and_scripts() {
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
        "./etc/sutantra/config.toml",
        "./usr/share/doc/sutantra/README.md",
        "./usr/share/doc/sutantra/ARCHITECTURE.md",
        "./usr/share/doc/sutantra/docs/configuration.md",
    ] {
        assert!(
            listing.contains(path),
            "{path} missing from the package:\n{listing}"
        );
    }
    let control = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(control.contains("Architecture: arm64"), "{control}");
    assert!(control.contains("Depends: libvpx7"), "{control}");

    let root = tempfile::tempdir().expect("tempdir");
    run(Command::new("dpkg-deb")
        .arg("-R")
        .arg(&deb)
        .arg(root.path()));
    let r = root.path();
    let conffiles = std::fs::read_to_string(r.join("DEBIAN/conffiles")).expect("conffiles");
    assert_eq!(
        conffiles.trim(),
        "/etc/sutantra/config.toml",
        "config survives upgrades"
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
        "Type=notify",
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

    // The packaged configuration is valid for the node.
    let cfg = r.join("etc/sutantra/config.toml");
    run(Command::new(binary())
        .args(["config", "validate"])
        .arg(&cfg));

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

/// Installs the host (amd64) package for real, as CI runs as root on a throwaway machine:
/// install, upgrade and remove must keep the operator's configuration, the node key and the
/// outbox; purge removes the configuration and the user and still keeps the state directory.
/// (No systemd runs as PID 1 here, so the maintainer scripts skip starting the service.)
#[test]
fn amd64_deb_install_upgrade_remove_keep_config_key_and_outbox() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    assert!(
        root,
        "this test installs a package: run the suite as root (scripts/test.sh)"
    );
    let state = Path::new("/var/lib/sutantra");
    let config = Path::new("/etc/sutantra/config.toml");
    assert!(
        !dpkg_installed("sutantra") && !state.exists(),
        "a sutantra installation already exists on this machine; the test installs and purges \
         its own, so it refuses to touch that one"
    );
    let v1 = build_host_deb("0.1.0");
    let v2 = build_host_deb("0.1.1");

    run(Command::new("dpkg").arg("-i").arg(&v1));
    assert!(dpkg_installed("sutantra"));
    let version = run(Command::new("/usr/bin/sutantra").arg("--version"));
    assert!(version.starts_with("sutantra"), "{version}");
    let groups = run(Command::new("id").args(["-nG", "sutantra"]));
    assert!(
        groups.contains("video") && groups.contains("gpio"),
        "groups: {groups}"
    );
    let meta = std::fs::metadata(state).expect("state dir");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mode() & 0o777, 0o700, "state dir mode");
    assert!(config.exists());

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
    let mut edited = std::fs::read_to_string(config).expect("config");
    edited.push_str("\n# edited by the operator\n");
    std::fs::write(config, &edited).expect("edit config");

    let kept = |when: &str| {
        assert_eq!(
            std::fs::read_to_string(config).expect("config kept"),
            edited,
            "{when}: the operator's config changed"
        );
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

    run(Command::new("dpkg").arg("-i").arg(&v2));
    let status = run(Command::new("dpkg-query").args(["-W", "-f=${Version}", "sutantra"]));
    assert_eq!(status, "0.1.1", "upgraded");
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
    println!("amd64 deb: install, upgrade, remove kept config, key and outbox; purge kept the key");
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
