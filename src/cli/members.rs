//! `portcullis images members`: image sharing in the local repository
//! (list, add, show, set a member's status, remove), the same use cases
//! `portcullis serve` offers at `/v2/images/{id}/members`.
//!
//! Thin: each subcommand parses its arguments, calls one member method of
//! `app::App` and hands back what to print. Who may share or answer is the
//! repository's rule (act as a project with `--project`); this module must
//! not decide it.

use clap::Subcommand;

use super::args::usage;
use super::output::Done;
use super::report::CliError;
use crate::app::{App, RequestContext};
use crate::image::{ImageId, MemberStatus};

/// The `images members` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// List an image's members (the owner sees all, a member its own).
    List {
        /// Image id.
        id: String,
    },
    /// Share a `shared` image with a project (status pending; owner or admin).
    Add {
        /// Image id.
        id: String,
        /// The project to share with.
        member: String,
    },
    /// Show one membership.
    Show {
        /// Image id.
        id: String,
        /// The member project.
        member: String,
    },
    /// Answer for a membership: pending, accepted or rejected (the member itself or an admin).
    Set {
        /// Image id.
        id: String,
        /// The member project.
        member: String,
        /// pending, accepted or rejected.
        status: String,
    },
    /// End a membership (owner or admin).
    Remove {
        /// Image id.
        id: String,
        /// The member project.
        member: String,
    },
}

/// Runs one members subcommand.
pub(crate) async fn run(
    app: &App,
    ctx: &RequestContext,
    command: MembersCommand,
) -> Result<Done, CliError> {
    let member = |member| Ok(Done::Member(Box::new(member)));
    match command {
        MembersCommand::List { id } => {
            Ok(Done::Members(app.list_members(ctx, parse_id(&id)?).await?))
        }
        MembersCommand::Add {
            id,
            member: project,
        } => member(app.add_member(ctx, parse_id(&id)?, &project).await?),
        MembersCommand::Show {
            id,
            member: project,
        } => member(app.show_member(ctx, parse_id(&id)?, &project).await?),
        MembersCommand::Set {
            id,
            member: project,
            status,
        } => {
            let status = status.parse::<MemberStatus>().map_err(usage)?;
            member(
                app.update_member(ctx, parse_id(&id)?, &project, status)
                    .await?,
            )
        }
        MembersCommand::Remove {
            id,
            member: project,
        } => member(app.delete_member(ctx, parse_id(&id)?, &project).await?),
    }
}

fn parse_id(text: &str) -> Result<ImageId, CliError> {
    text.parse::<ImageId>().map_err(usage)
}
