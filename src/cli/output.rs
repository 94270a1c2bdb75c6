//! What a successful `ingest` or `images` command prints: one image (text
//! lines or Glance's image document), a page of images (text rows or
//! Glance's list page), a download summary (stderr when the data itself
//! went to standard output), or image members (text rows or Glance's member
//! documents).
//!
//! This module owns the output formats; it must not compute anything.

use crate::image::{Image, Member};

use super::OutputFormat;
use super::stdio::{self, Printed};

/// What a command has to print on success.
pub(crate) enum Done {
    /// One image.
    Image(Box<Image>),
    /// A page of images, with the query that asked for it.
    Images {
        /// The page.
        images: Vec<Image>,
        /// The filters as query parameters (for Glance's `first`/`next` links).
        params: Vec<(String, String)>,
        /// The page size asked for (`None`: everything).
        limit: Option<u32>,
    },
    /// Data written somewhere (download).
    Downloaded {
        /// The JSON summary.
        summary: serde_json::Value,
        /// The text-mode line.
        line: String,
        /// Whether the data itself went to stdout (the summary then goes to stderr).
        to_stdout: bool,
    },
    /// One membership.
    Member(Box<Member>),
    /// An image's memberships.
    Members(Vec<Member>),
}

/// Prints `done` on stdout (a download summary: stderr when the data went to stdout).
///
/// Text goes through [`stdio::line`], so names and property values with
/// control characters cannot forge a row or a line.
pub(crate) fn print_done(format: OutputFormat, done: &Done) -> Printed {
    match (format, done) {
        (OutputFormat::Json, Done::Image(image)) => stdio::json(&crate::wire::ImageJson(image)),
        (
            OutputFormat::Json,
            Done::Images {
                images,
                params,
                limit,
            },
        ) => stdio::json(&crate::wire::ImagesPage::new(
            images,
            params,
            limit.unwrap_or(u32::MAX),
        )),
        // The data itself went to stdout: the summary goes to stderr.
        (
            OutputFormat::Json,
            Done::Downloaded {
                summary,
                to_stdout: true,
                ..
            },
        ) => {
            stdio::ejson(summary);
            Ok(())
        }
        (
            OutputFormat::Text,
            Done::Downloaded {
                line,
                to_stdout: true,
                ..
            },
        ) => {
            stdio::eline(line);
            Ok(())
        }
        (
            OutputFormat::Json,
            Done::Downloaded {
                summary,
                to_stdout: false,
                ..
            },
        ) => stdio::json(summary),
        (OutputFormat::Json, Done::Member(member)) => stdio::json(&crate::wire::MemberJson(member)),
        (OutputFormat::Json, Done::Members(members)) => {
            stdio::json(&crate::wire::MembersJson(members))
        }
        (OutputFormat::Text, Done::Member(member)) => print_member_text(member),
        (OutputFormat::Text, Done::Members(members)) => {
            members.iter().try_for_each(print_member_text)
        }
        (OutputFormat::Text, Done::Image(image)) => print_image_text(image),
        (OutputFormat::Text, Done::Images { images, .. }) => {
            for image in images {
                stdio::line(&format!(
                    "{}  {:<12} {:>12}  {}",
                    image.id,
                    image.status,
                    image
                        .size
                        .map(|size| size.to_string())
                        .unwrap_or_else(|| "-".to_owned()),
                    image.name.as_deref().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        (
            OutputFormat::Text,
            Done::Downloaded {
                line,
                to_stdout: false,
                ..
            },
        ) => stdio::line(line),
    }
}

/// `<image id>  <member>  <status>`, one line per membership.
fn print_member_text(member: &Member) -> Printed {
    stdio::line(&format!(
        "{}  {}  {}",
        member.image_id, member.member_id, member.status
    ))
}

fn print_image_text(image: &Image) -> Printed {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let mut lines = vec![
        format!("id:               {}", image.id),
        format!("name:             {}", optional(image.name.clone())),
        format!("status:           {}", image.status),
        format!("visibility:       {}", image.visibility),
        format!(
            "disk_format:      {}",
            optional(image.disk_format.map(|f| f.to_string()))
        ),
        format!(
            "container_format: {}",
            optional(image.container_format.map(|f| f.to_string()))
        ),
        format!(
            "size:             {}",
            optional(image.size.map(|s| s.to_string()))
        ),
        format!(
            "virtual_size:     {}",
            optional(image.virtual_size.map(|s| s.to_string()))
        ),
        format!("checksum:         {}", optional(image.checksum.clone())),
        format!("os_hash_algo:     {}", optional(image.os_hash_algo.clone())),
        format!(
            "os_hash_value:    {}",
            optional(image.os_hash_value.clone())
        ),
    ];
    for (key, value) in &image.properties {
        // Signatures are long and sensitive to log in full: show the start.
        let shown = if key == "img_signature" && value.len() > 16 {
            format!(
                "{}…",
                &value[..value.char_indices().nth(16).map_or(value.len(), |(i, _)| i)]
            )
        } else {
            value.clone()
        };
        lines.push(format!("{key}: {shown}"));
    }
    // One line per call: each is escaped on its own, so a value's newline
    // is printed as `\n` and never starts a line of its own.
    lines.iter().try_for_each(|text| stdio::line(text))
}
