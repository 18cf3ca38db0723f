//! Column types as written in a declared schema: SQL-style names (`varchar`, `bigint`,
//! `decimal(18,2)`, `date`, `timestamp`) mapped to Arrow types.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// Parses a declared column type. Returns a message listing the accepted names on failure.
pub fn parse_type(s: &str) -> Result<DataType, String> {
    let t = s.trim().to_ascii_lowercase();
    let simple = match t.as_str() {
        "varchar" | "text" | "string" | "utf8" => Some(DataType::Utf8),
        "boolean" | "bool" => Some(DataType::Boolean),
        "smallint" | "int2" | "int16" => Some(DataType::Int16),
        "int" | "integer" | "int4" | "int32" => Some(DataType::Int32),
        "bigint" | "int8" | "int64" => Some(DataType::Int64),
        "real" | "float" | "float4" | "float32" => Some(DataType::Float32),
        "double" | "float8" | "float64" => Some(DataType::Float64),
        "date" => Some(DataType::Date32),
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        "binary" | "bytea" => Some(DataType::Binary),
        _ => None,
    };
    if let Some(dt) = simple {
        return Ok(dt);
    }
    if let Some(args) = t
        .strip_prefix("decimal(")
        .or_else(|| t.strip_prefix("numeric("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut parts = args.split(',').map(str::trim);
        let p = parts.next().and_then(|p| p.parse::<u8>().ok());
        let scale = parts.next().map_or(Some(0), |s| s.parse::<i8>().ok());
        if let (Some(p), Some(scale), None) = (p, scale, parts.next())
            && (1..=38).contains(&p)
            && scale >= 0
            && (scale as u8) <= p
        {
            return Ok(DataType::Decimal128(p, scale));
        }
        return Err(format!(
            "bad decimal type `{s}`: write decimal(P,S) with 1 <= P <= 38 and 0 <= S <= P"
        ));
    }
    Err(format!(
        "unknown column type `{s}`; use one of varchar, boolean, smallint, int, bigint, \
         real, double, decimal(P,S), date, timestamp, timestamptz, binary"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sql_style_names() {
        assert_eq!(parse_type("VARCHAR"), Ok(DataType::Utf8));
        assert_eq!(
            parse_type("decimal(12, 2)"),
            Ok(DataType::Decimal128(12, 2))
        );
        assert_eq!(parse_type("date"), Ok(DataType::Date32));
    }

    #[test]
    fn rejects_unknown_and_bad_decimals() {
        assert!(
            parse_type("money")
                .unwrap_err()
                .contains("unknown column type")
        );
        assert!(parse_type("decimal(40,2)").is_err());
        assert!(parse_type("decimal(5,6)").is_err());
    }
}
