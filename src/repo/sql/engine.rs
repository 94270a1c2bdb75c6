//! The two database engines behind one small interface, so that every query
//! of the SQL backend is written once: statements with `$n` placeholders
//! built by [`Sql`], run on a [`Session`] (a pooled connection or a
//! transaction on either engine), rows read through [`Row`].
//!
//! It owns the dispatch to sqlx's SQLite and PostgreSQL drivers, how a
//! transaction starts on each (SQLite: `BEGIN IMMEDIATE`, the database write
//! lock up front; PostgreSQL: READ COMMITTED, with row locks taken by the
//! queries that need them) and the per-project lock ([`Session::lock_project`]).
//! It must not know the schema.
//!
//! Why not sqlx's `Any` driver or code generic over `sqlx::Database`: `Any`
//! cannot decode PostgreSQL's NUMERIC or pass typed NULLs, and generic sqlx
//! code needs higher-ranked bounds on every function; a closed enum of two
//! drivers with typed values is smaller and checks the same at compile time.

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row as _, Sqlite, SqlitePool, Transaction};

/// A value bound to a placeholder. NULLs are typed, because PostgreSQL
/// refuses a text NULL for a BIGINT column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::Text(Some(value.to_owned()))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Text(Some(value))
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Value {
        Value::Text(Some(value.clone()))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Value {
        Value::Text(value)
    }
}

impl From<Option<&str>> for Value {
    fn from(value: Option<&str>) -> Value {
        Value::Text(value.map(str::to_owned))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Value {
        Value::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Bool(value)
    }
}

/// A statement under construction: text with `$1`, `$2`, … placeholders
/// (both engines read them) and the values bound to them. Caller input only
/// ever goes into values, never into the text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    /// A statement starting with `text`.
    pub(crate) fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (never caller input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Sql {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(v1, v2, …)` with one placeholder per value.
    pub(crate) fn bind_list<V: Into<Value>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Sql {
        self.push("(");
        for (position, value) in values.into_iter().enumerate() {
            if position > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    fn sqlite(&self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for value in &self.args {
            query = match value {
                Value::Text(text) => query.bind(text.clone()),
                Value::Int(int) => query.bind(*int),
                Value::Bool(flag) => query.bind(*flag),
            };
        }
        query
    }

    fn postgres(&self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for value in &self.args {
            query = match value {
                Value::Text(text) => query.bind(text.clone()),
                Value::Int(int) => query.bind(*int),
                Value::Bool(flag) => query.bind(*flag),
            };
        }
        query
    }
}

/// Which engine a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A connection or transaction on either engine.
pub(crate) enum Session {
    SqliteConn(PoolConnection<Sqlite>),
    SqliteTx(Transaction<'static, Sqlite>),
    PostgresConn(PoolConnection<Postgres>),
    PostgresTx(Transaction<'static, Postgres>),
}

/// Runs `statement` with the sqlx method `$method` on whichever connection
/// the session holds, and maps the engine's result with `sqlite` or `postgres`.
macro_rules! on_session {
    ($session:expr, $statement:expr, $method:ident,
     sqlite: $sqlite:expr, postgres: $postgres:expr) => {
        match $session {
            Session::SqliteConn(conn) => {
                $statement.sqlite().$method(&mut **conn).await.map($sqlite)
            }
            Session::SqliteTx(tx) => $statement.sqlite().$method(&mut **tx).await.map($sqlite),
            Session::PostgresConn(conn) => $statement
                .postgres()
                .$method(&mut **conn)
                .await
                .map($postgres),
            Session::PostgresTx(tx) => $statement
                .postgres()
                .$method(&mut **tx)
                .await
                .map($postgres),
        }
    };
}

impl Session {
    /// A pooled connection (reads that need no snapshot).
    pub(crate) async fn connection_sqlite(pool: &SqlitePool) -> Result<Session, sqlx::Error> {
        Ok(Session::SqliteConn(pool.acquire().await?))
    }

    /// A pooled connection (reads that need no snapshot).
    pub(crate) async fn connection_postgres(pool: &PgPool) -> Result<Session, sqlx::Error> {
        Ok(Session::PostgresConn(pool.acquire().await?))
    }

    /// A read transaction: one consistent snapshot for the several
    /// statements that read a record and its children.
    pub(crate) async fn read_sqlite(pool: &SqlitePool) -> Result<Session, sqlx::Error> {
        // Deferred: the snapshot starts at the first read and takes no lock.
        Ok(Session::SqliteTx(pool.begin().await?))
    }

    /// A read transaction: one consistent snapshot for the several
    /// statements that read a record and its children.
    pub(crate) async fn read_postgres(pool: &PgPool) -> Result<Session, sqlx::Error> {
        Ok(Session::PostgresTx(
            pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?,
        ))
    }

    /// A write transaction.
    pub(crate) async fn write_sqlite(pool: &SqlitePool) -> Result<Session, sqlx::Error> {
        // IMMEDIATE takes the write lock up front: a deferred transaction that
        // reads and then writes can fail with SQLITE_BUSY without waiting when
        // another process writes in between. It also serializes every writer,
        // so a quota check and the write it allows are one atomic step.
        Ok(Session::SqliteTx(pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// A write transaction (READ COMMITTED: each statement sees what committed
    /// before it; [`Session::lock_project`] and the compare-and-swap `WHERE`
    /// clauses provide the serialization that matters).
    pub(crate) async fn write_postgres(pool: &PgPool) -> Result<Session, sqlx::Error> {
        Ok(Session::PostgresTx(pool.begin().await?))
    }

    /// The engine this session runs on.
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Session::SqliteConn(_) | Session::SqliteTx(_) => Engine::Sqlite,
            Session::PostgresConn(_) | Session::PostgresTx(_) => Engine::Postgres,
        }
    }

    /// An SQL expression for the database server's clock, in microseconds
    /// since the Unix epoch: the one clock every node agrees on (upload
    /// lease expiry). SQLite's `julianday('now')` has millisecond
    /// precision, which is plenty for leases of seconds.
    pub(crate) fn now_micros(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS BIGINT)",
            Engine::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn execute(&mut self, statement: &Sql) -> Result<u64, sqlx::Error> {
        on_session!(self, statement, execute,
            sqlite: |done| done.rows_affected(),
            postgres: |done| done.rows_affected())
    }

    /// Runs a query; returns every row.
    pub(crate) async fn fetch_all(&mut self, statement: &Sql) -> Result<Vec<Row>, sqlx::Error> {
        on_session!(self, statement, fetch_all,
            sqlite: |rows| rows.into_iter().map(Row::Sqlite).collect(),
            postgres: |rows| rows.into_iter().map(Row::Postgres).collect())
    }

    /// Runs a query; returns its first row, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        statement: &Sql,
    ) -> Result<Option<Row>, sqlx::Error> {
        on_session!(self, statement, fetch_optional,
            sqlite: |row| row.map(Row::Sqlite),
            postgres: |row| row.map(Row::Postgres))
    }

    /// Commits a transaction (a plain connection has nothing to commit).
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Session::SqliteTx(tx) => tx.commit().await,
            Session::PostgresTx(tx) => tx.commit().await,
            Session::SqliteConn(_) | Session::PostgresConn(_) => Ok(()),
        }
    }

    /// Serializes this transaction with every other write transaction that
    /// locks `project`, until it ends: what makes a quota check and the
    /// write it allows atomic across processes and nodes.
    ///
    /// SQLite: nothing to do, the `BEGIN IMMEDIATE` transaction already holds
    /// the database's one write lock. PostgreSQL: `SELECT … FOR UPDATE` on
    /// the project's row in `quota_projects` (inserted on first use). Chosen
    /// over SERIALIZABLE with retries because it blocks only writes of the
    /// same project and never aborts: SERIALIZABLE's predicate locks on the
    /// usage sums would abort unrelated uploads under load (its conflict
    /// detection works on pages) and every caller would need a retry loop.
    /// Callers lock projects before touching image rows, in sorted order, so
    /// two transactions cannot deadlock on them.
    pub(crate) async fn lock_project(&mut self, project: &str) -> Result<(), sqlx::Error> {
        match self.engine() {
            Engine::Sqlite => Ok(()),
            Engine::Postgres => {
                let mut insert = Sql::new("INSERT INTO quota_projects (project) VALUES (");
                insert
                    .bind(project)
                    .push(") ON CONFLICT (project) DO NOTHING");
                self.execute(&insert).await?;
                let mut lock = Sql::new("SELECT project FROM quota_projects WHERE project = ");
                lock.bind(project).push(" FOR UPDATE");
                self.fetch_optional(&lock).await.map(drop)
            }
        }
    }

    /// Locks the row of image `id` until the transaction ends (PostgreSQL;
    /// SQLite's write transaction already excludes every other writer).
    pub(crate) async fn lock_image(&mut self, id: &str) -> Result<(), sqlx::Error> {
        match self.engine() {
            Engine::Sqlite => Ok(()),
            Engine::Postgres => {
                let mut lock = Sql::new("SELECT id FROM images WHERE id = ");
                lock.bind(id).push(" FOR UPDATE");
                self.fetch_optional(&lock).await.map(drop)
            }
        }
    }
}

/// A result row of either engine, read by column name.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// A TEXT column (NULL as `None`).
    pub(crate) fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Row::Sqlite(row) => row.try_get(column),
            Row::Postgres(row) => row.try_get(column),
        }
    }

    /// A BIGINT column (NULL as `None`).
    pub(crate) fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Row::Sqlite(row) => row.try_get(column),
            Row::Postgres(row) => row.try_get(column),
        }
    }

    /// A BOOLEAN column (never NULL in this schema).
    pub(crate) fn boolean(&self, column: &str) -> Result<bool, sqlx::Error> {
        match self {
            Row::Sqlite(row) => row.try_get(column),
            Row::Postgres(row) => row.try_get(column),
        }
    }
}

/// Whether `err` is a unique-constraint violation (a duplicate key), on
/// either engine.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(database) = err {
        database.is_unique_violation()
    } else {
        false
    }
}
