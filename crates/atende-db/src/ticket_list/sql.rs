//! A query assembled once from static fragments and bound values, then handed to either driver's
//! `QueryBuilder`: the list SQL is the same text on SQLite and PostgreSQL, so it is built once
//! instead of once per backend, and tests can read the text it produced.

use sqlx::{Database, Encode, QueryBuilder, Type};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Sql(&'static str),
    /// An integer written into the text: it can only print digits and a sign.
    Literal(i64),
    Bind(Arg),
}

/// SQL text made only of `&'static str` fragments; every value travels as a bind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sql {
    pieces: Vec<Piece>,
}

impl Sql {
    pub(crate) fn new(text: &'static str) -> Sql {
        let mut sql = Sql::default();
        sql.push(text);
        sql
    }

    pub(crate) fn push(&mut self, text: &'static str) -> &mut Self {
        self.pieces.push(Piece::Sql(text));
        self
    }

    pub(crate) fn int(&mut self, value: i64) -> &mut Self {
        self.pieces.push(Piece::Bind(Arg::Int(value)));
        self
    }

    /// An integer written into the SQL text instead of bound. Only for `LIMIT`s: PostgreSQL
    /// plans a prepared statement once (generic plan) only when it knows the limit; with a bound
    /// limit it guesses a tenth of the rows and re-plans on every execution instead, which costs
    /// more than running the page.
    pub(crate) fn literal(&mut self, value: i64) -> &mut Self {
        self.pieces.push(Piece::Literal(value));
        self
    }

    pub(crate) fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.pieces.push(Piece::Bind(Arg::Text(value.into())));
        self
    }

    /// `(v1, v2, …)`; the caller makes sure the list is not empty (SQL has no empty `IN ()`).
    pub(crate) fn int_list(&mut self, values: impl IntoIterator<Item = i64>) -> &mut Self {
        self.push("(");
        for (n, value) in values.into_iter().enumerate() {
            if n > 0 {
                self.push(", ");
            }
            self.int(value);
        }
        self.push(")")
    }

    pub(crate) fn append(&mut self, other: Sql) -> &mut Self {
        self.pieces.extend(other.pieces);
        self
    }

    /// A driver query builder holding this text and its binds.
    pub(crate) fn builder<DB>(&self) -> QueryBuilder<DB>
    where
        DB: Database,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
        for<'q> String: Encode<'q, DB> + Type<DB>,
    {
        let mut builder = QueryBuilder::new("");
        for piece in &self.pieces {
            match piece {
                Piece::Sql(text) => {
                    builder.push(*text);
                }
                Piece::Literal(value) => {
                    builder.push(*value);
                }
                Piece::Bind(Arg::Int(value)) => {
                    builder.push_bind(*value);
                }
                Piece::Bind(Arg::Text(value)) => {
                    builder.push_bind(value.clone());
                }
            }
        }
        builder
    }

    /// [`Sql::builder`] for the driver of `pool` (the pool only names the driver).
    pub(crate) fn builder_for<DB>(&self, _pool: &sqlx::Pool<DB>) -> QueryBuilder<DB>
    where
        DB: Database,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
        for<'q> String: Encode<'q, DB> + Type<DB>,
    {
        self.builder()
    }

    /// The text with `$n` placeholders, for tests and query-plan checks.
    pub(crate) fn text_with_placeholders(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Sql(text) => out.push_str(text),
                Piece::Literal(value) => out.push_str(&value.to_string()),
                Piece::Bind(_) => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
        }
        out
    }

    /// The bound values in order.
    #[cfg(test)]
    pub(crate) fn args(&self) -> Vec<Arg> {
        self.pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Bind(arg) => Some(arg.clone()),
                Piece::Sql(_) | Piece::Literal(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binds_stay_apart() {
        let mut sql = Sql::new("SELECT id FROM t WHERE a = ");
        sql.int(7)
            .push(" AND b IN ")
            .int_list([1, 2])
            .push(" AND c = ")
            .text("x'y");
        assert_eq!(
            sql.text_with_placeholders(),
            "SELECT id FROM t WHERE a = $1 AND b IN ($2, $3) AND c = $4"
        );
        assert_eq!(
            sql.args(),
            vec![
                Arg::Int(7),
                Arg::Int(1),
                Arg::Int(2),
                Arg::Text("x'y".into())
            ]
        );
    }
}
