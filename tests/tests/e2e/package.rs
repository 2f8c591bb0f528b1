//! The Debian package for the Pi (aarch64): contents, control data, maintainer scripts, the
//! hardened systemd unit (checked by `systemd-analyze verify`), the packaged configuration (checked
//! by the node itself) and the binary (an aarch64 ELF within the size budget).

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
