//! S2 and S3, in-process (resource-model on a `local` backend over a copy of the generated
//! repository): the cold snapshot build of 10,000 flags against parsing the same files with
//! the YAML library alone, and the rebuild after a one-flag commit against the cold build.

use std::time::Instant;

use anyhow::{Context as _, Result};
use git_backend::ObjectId;
use git_backend_local::{LocalBackend, LocalOptions};
use resource_model::Snapshot;

use super::{Ctx, ensure};
use crate::data::{self, RawWriter};
use crate::report::{Figure, Target};

fn object_id(oid: git2::Oid) -> Result<ObjectId> {
    let bytes: [u8; 20] = oid.as_bytes().try_into().context("a SHA-1 object id")?;
    Ok(ObjectId::from_bytes(bytes))
}

pub(super) async fn run(ctx: &mut Ctx) -> Result<Vec<Figure>> {
    let repo = ctx.repo10k()?;
    let s = ctx.scale;
    let copy = ctx.dir("s2")?.join("repo.git");
    data::copy_repo(&repo.path, &copy)?;
    let files = data::files(repo.namespaces);
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    // The one-flag commit of S3.
    let mut writer = RawWriter::open(&copy)?;
    let first = writer.head();
    // Switch the first flag of one namespace on.
    let text =
        data::NamespaceText::generated(42)
            .render()
            .replacen("enabled: false", "enabled: true", 1);
    let second = writer.commit_file(&data::namespace_path(42), text.as_bytes(), "one flag")?;
    drop(writer);
    let (first, second) = (object_id(first)?, object_id(second)?);

    let backend =
        tokio::task::block_in_place(|| LocalBackend::open(LocalOptions::new(&copy, "main")))?;
    let build = || async {
        Snapshot::build(&backend, first, "")
            .await
            .context("cold build")
    };
    let parse = || -> Result<()> {
        for (path, text) in &files {
            let v: serde_yaml::Value =
                serde_yaml::from_str(text).with_context(|| format!("parse {path}"))?;
            std::hint::black_box(v);
        }
        Ok(())
    };
    // Warm-up, and a check that the data set is what the figure says.
    let snapshot = build().await?;
    let flags: usize = snapshot.namespaces().map(|n| n.flags().len()).sum();
    ensure(flags == 10_000, || {
        format!("{flags} flags in the snapshot, expected 10,000")
    })?;
    parse()?;
    let rebuilt = snapshot.rebuild(&backend, second).await?;
    ensure(rebuilt.stats().files_parsed == 1, || {
        format!(
            "rebuild parsed {} files, expected 1",
            rebuilt.stats().files_parsed
        )
    })?;

    let rounds = s.pick(7, 3);
    let (mut cold, mut yaml, mut re) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(build().await?);
        cold.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        parse()?;
        yaml.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        std::hint::black_box(snapshot.rebuild(&backend, second).await?);
        re.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let s2 = Figure::compared(
        "S2",
        "cold snapshot build, 10k flags",
        "ms",
        cold.clone(),
        "serde_yaml parse of the same files",
        yaml,
        Target::RatioAtMost(1.3),
        1,
        1,
    )
    .note(format!(
        "in-process: resource_model::Snapshot::build at the commit of the generated repository (listing, reading 100 blobs, parsing, validating, indexing) through a `local` backend on a bare copy on tmpfs; baseline: serde_yaml (serde_norway) parsing the same {} files ({:.1} MB) from memory into `serde_yaml::Value`; runs interleaved",
        files.len(),
        bytes as f64 / 1e6
    ));
    let s3 = Figure::compared(
        "S3",
        "snapshot rebuild after a one-flag commit / cold build",
        "ms",
        re,
        "S2 cold build",
        cold,
        Target::RatioAtMost(0.05),
        1,
        1,
    )
    .note("Snapshot::rebuild from the snapshot of the data set to a commit that changed one flag in one namespace file (one file re-parsed, checked)");
    Ok(vec![s2, s3])
}
