//! `sutantra keys show`: the node's identity key.

use crate::validator::keys;
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;
use sutantra_chain::attest::node_id;

use super::chain::{DataDir, fail};

/// `sutantra keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Print the node's public key (hex) and node id; never the secret.
    ///
    /// Creates the key (mode 0600) if there is none yet, exactly as the node's first start
    /// would, so a node can be registered before it first runs.
    Show {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sutantra keys ...`.
pub fn keys(cmd: KeysCmd) -> ExitCode {
    match cmd {
        KeysCmd::Show { dir, json: as_json } => {
            let (kp, created) = match keys::load_or_create(&dir.data_dir) {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            let path = keys::key_path(&dir.data_dir);
            if created {
                eprintln!("created a new node key in {}", path.display());
            }
            let pk = keys::public_key_hex(&kp);
            let id = node_id(&kp.pk);
            if as_json {
                out!(
                    "{}",
                    json!({"public_key": pk, "node_id": id, "key_file": path, "created": created})
                );
            } else {
                out!("public_key: {pk}");
                out!("node_id:    {id}");
                out!("key_file:   {}", path.display());
            }
            ExitCode::SUCCESS
        }
    }
}
