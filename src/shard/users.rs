//! Users and permissions on the shards: every shard's copy (`Metadata::
//! auth`, a `broker::auth::AuthStore`), restored at start (a first start
//! creates the default user), the leader's handling of the user and
//! permission commands (validated with rabbitmqctl's texts, then journaled
//! and replicated like a policy), and applying a replicated change: the
//! store moves its generation (so channels drop their cached publish
//! decisions) and a deleted user's connections on this shard are closed
//! with 320 CONNECTION_FORCED, as RabbitMQ.

use crate::broker::auth::{AuthChange, AuthDefs, AuthRequest, UserDef};
use crate::broker::error::{code, AmqpError};
use crate::shard::inbox::ConnectionInbox;
use crate::shard::metadata::Metadata;
use crate::shard::{Settings, Shard};
use std::rc::Rc;

/// Restores the auth records at start: the stored ones, or on a first
/// start (none stored) the default user with every permission on `/`,
/// which shard 0 stores before the broker serves (`store_first_start`).
pub fn recover(meta: &mut Metadata, settings: &Settings, stored: Option<AuthDefs>) {
    let persisted = stored.is_some();
    let defs = stored.unwrap_or_else(|| {
        let (name, hash) = &settings.default_user;
        AuthDefs::initial(name, hash)
    });
    for e in meta.auth.reset(defs, persisted) {
        tracing::warn!("stored {e}");
    }
}

/// Shard 0, at start, when no users were stored (a first start, or a data
/// dir from before users): writes the definitions with the default user as
/// a new generation before the broker listens, so the user survives a
/// SIGKILL right after the start, and a later start with another
/// `--default-user` finds users stored and seeds nobody (RabbitMQ seeds
/// only an empty database). The other shards load either the old files or
/// these (the rename is atomic); both give them the same records.
/// `snapshot_generation` is the generation of the snapshot recovery read.
pub async fn store_first_start(
    meta: &mut Metadata,
    settings: &Settings,
    snapshot_generation: u64,
) -> std::io::Result<()> {
    if meta.auth.persisted() {
        return Ok(());
    }
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)?;
    let defs = crate::shard::definitions::definitions_of(meta, settings.shards as u16);
    let on_disk = crate::storage::definitions::journal_generation(dir).await?;
    let generation = snapshot_generation.max(on_disk) + 1;
    let (journal, _) =
        crate::storage::definitions::start_generation(dir, &defs, generation, None).await?;
    journal.close().await;
    meta.auth.mark_persisted();
    tracing::info!(
        "first start: stored the default user '{}'",
        settings.default_user.0
    );
    Ok(())
}

/// rabbitmqctl's refusal for a vhost that does not exist.
fn existing_vhost(meta: &Metadata, vhost: &str) -> Result<(), AmqpError> {
    if meta.vhost_id(vhost).is_some() {
        Ok(())
    } else {
        Err(AmqpError::not_found(format!(
            "Virtual host {vhost} does not exist"
        )))
    }
}

/// How the admin endpoint reports a refused command: the code picks the
/// exit status (404: no such user or vhost, 409: exists, 406: invalid).
fn no_such_user(name: &str, quoted: bool) -> AmqpError {
    if quoted {
        AmqpError::not_found(format!("User \"{name}\" does not exist"))
    } else {
        AmqpError::not_found(format!("User {name} does not exist"))
    }
}

/// Leader: the changes a command makes (validated against the leader's
/// copy), or RabbitMQ's refusal.
pub fn changes_of(shard: &Shard, request: AuthRequest) -> Result<Vec<AuthChange>, AmqpError> {
    let meta = shard.meta.borrow();
    let store = &meta.auth;
    let user_of = |name: &str, quoted: bool| {
        store
            .user(name)
            .cloned()
            .ok_or_else(|| no_such_user(name, quoted))
    };
    let invalid = AmqpError::precondition_failed;
    let changes = match request {
        AuthRequest::AddUser(u) => {
            if store.user(&u.name).is_some() {
                return Err(AmqpError::new(
                    code::RESOURCE_LOCKED,
                    format!("User \"{}\" already exists", u.name),
                ));
            }
            vec![AuthChange::User(u)]
        }
        AuthRequest::PutUser(u) => vec![AuthChange::User(u)],
        AuthRequest::DeleteUser(name) => {
            user_of(&name, true)?;
            vec![AuthChange::UserGone(name)]
        }
        AuthRequest::ChangePassword {
            name,
            password_hash,
        } => vec![AuthChange::User(UserDef {
            password_hash,
            hashing_algorithm: crate::broker::auth::password::SHA256.into(),
            ..user_of(&name, true)?
        })],
        AuthRequest::SetTags { name, tags } => vec![AuthChange::User(UserDef {
            tags,
            ..user_of(&name, true)?
        })],
        AuthRequest::SetPermissions(p) => {
            user_of(&p.user, false)?;
            existing_vhost(&meta, &p.vhost)?;
            vec![AuthChange::Permission(p)]
        }
        AuthRequest::ClearPermissions { user, vhost } => {
            user_of(&user, false)?;
            existing_vhost(&meta, &vhost)?;
            vec![AuthChange::PermissionGone { user, vhost }]
        }
        AuthRequest::SetTopicPermissions(t) => {
            user_of(&t.user, false)?;
            existing_vhost(&meta, &t.vhost)?;
            vec![AuthChange::TopicPermission(t)]
        }
        AuthRequest::ClearTopicPermissions {
            user,
            vhost,
            exchange,
        } => {
            user_of(&user, false)?;
            existing_vhost(&meta, &vhost)?;
            store
                .defs()
                .topic_permissions
                .values()
                .filter(|t| t.user == user && t.vhost == vhost)
                .filter(|t| exchange.as_ref().is_none_or(|x| *x == t.exchange))
                .map(|t| AuthChange::TopicPermissionGone {
                    user: t.user.clone(),
                    vhost: t.vhost.clone(),
                    exchange: t.exchange.clone(),
                })
                .collect()
        }
    };
    for c in &changes {
        store.validate(c).map_err(invalid)?;
    }
    Ok(changes)
}

/// A replicated change, on this shard's copy.
pub fn apply(shard: &Rc<Shard>, change: &AuthChange) {
    if let Err(e) = shard.meta.borrow_mut().auth.apply(change) {
        tracing::warn!("replicated {e}");
    }
    if let AuthChange::UserGone(name) = change {
        close_connections_of(shard, name);
    }
}

/// RabbitMQ closes a deleted user's connections: 320 `user 'u' is
/// deleted`.
fn close_connections_of(shard: &Rc<Shard>, user: &str) {
    let conns: Vec<Rc<dyn ConnectionInbox>> = shard
        .conns
        .borrow()
        .values()
        .filter(|c| c.snapshot().user == user)
        .cloned()
        .collect();
    if conns.is_empty() {
        return;
    }
    let err = AmqpError::new(code::CONNECTION_FORCED, format!("user '{user}' is deleted"));
    tracing::info!(
        shard = shard.id,
        "closing {} connection(s) of deleted user '{user}'",
        conns.len()
    );
    crate::shard::close::force_close(conns, &err);
}
