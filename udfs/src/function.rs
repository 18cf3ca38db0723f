//! The one DataFusion [`ScalarUDFImpl`] of the crate, [`Udf`], and the kinds of function it
//! serves.
//!
//! A function is a definition: a type that states its SQL name, its arguments, its
//! documentation and its body by implementing [`Function`]; `definition.udf()` makes it a
//! DataFusion function. Most functions are of a kind that fixes all of that but the logic,
//! and implement the kind's smaller trait instead:
//! - [`StringFn`]: one string to a string of the same type, row by row (ID number fields,
//!   fixed-pattern masks);
//! - [`Validator`]: a string to a boolean, row by row;
//! - [`Transform`]: a `(lon, lat)` point to a point (the coordinate conversions).

use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, not_impl_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::domain_fns::coords;
use crate::kernel::{self, string};

/// What a function is: everything [`Udf`] needs to serve it.
pub(crate) trait Function: Send + Sync + Sized + 'static {
    /// The SQL name.
    const NAME: &'static str;

    /// Runs the function on one batch.
    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue>;

    /// The argument lists it accepts, and its volatility.
    fn signature() -> Signature;

    /// The types that a user-defined signature casts `arg_types` to; only functions whose
    /// [`signature`](Self::signature) is user-defined are asked.
    fn coerce_types(_arg_types: &[DataType]) -> Result<Vec<DataType>> {
        not_impl_err!("Function {} does not implement coerce_types", Self::NAME)
    }

    /// The type of its result for arguments of `arg_types`. By default the type of the first
    /// argument, which must be a string: most functions give a string of their input's type.
    fn return_type(arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(Self::NAME, arg_types)
    }

    /// Its documentation, built when first asked for.
    fn doc() -> Documentation;

    /// Whether `self` and `other` are the same function, so that a plan made with one may be
    /// taken for a plan made with the other: always, unless the definition holds state.
    fn same(&self, _other: &Self) -> bool {
        true
    }

    /// This function as DataFusion's.
    fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(Udf::new(self))
    }
}

/// The [`ScalarUDFImpl`] of every function: its definition `F`, with the signature made once
/// and the documentation made when first asked for.
pub(crate) struct Udf<F> {
    function: F,
    signature: Signature,
    doc: LazyLock<Documentation>,
}

impl<F: Function> Udf<F> {
    pub(crate) fn new(function: F) -> Self {
        Self {
            function,
            signature: F::signature(),
            doc: LazyLock::new(F::doc),
        }
    }
}

// Definitions need not implement `Debug`: the name says which function this is.
impl<F: Function> Debug for Udf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udf")
            .field("name", &F::NAME)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

// The documentation follows from the definition's type, so it is not compared.
impl<F: Function> PartialEq for Udf<F> {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature && self.function.same(&other.function)
    }
}

impl<F: Function> Eq for Udf<F> {}

// Instances that are the same function have the same signature.
impl<F: Function> Hash for Udf<F> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.signature.hash(state);
    }
}

impl<F: Function> ScalarUDFImpl for Udf<F> {
    fn name(&self) -> &str {
        F::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        F::coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        F::return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.function.invoke(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

/// One string argument, of any string type; the result follows from it alone.
fn one_string() -> Signature {
    Signature::coercible(vec![string()], Volatility::Immutable)
}

/// The documentation of a function whose first argument is the string `str`: the parts its
/// definition states, in DataFusion's form.
fn string_doc(
    section: DocSection,
    about: &str,
    syntax: String,
    example: &str,
    parameters: &[(&str, &str)],
    related: &[&str],
) -> Documentation {
    let doc = Documentation::builder(section, about, syntax)
        .with_sql_example(example)
        .with_standard_argument("str", Some("String"));
    let doc = parameters
        .iter()
        .fold(doc, |doc, (name, text)| doc.with_argument(*name, *text));
    related
        .iter()
        .fold(doc, |doc, name| doc.with_related_udf(*name))
        .build()
}

/// A function of one string to a string of the same type (Utf8, LargeUtf8 or Utf8View), row
/// by row; NULL in gives NULL out. Its documentation is made from the parts it states.
pub(crate) trait StringFn: Send + Sync + Sized + 'static {
    /// The SQL name.
    const NAME: &'static str;
    /// The section of the documentation that lists it.
    const SECTION: DocSection = DOC_SECTION_OTHER;
    /// What it does: the documentation's description.
    const ABOUT: &'static str;
    /// The documentation's SQL example.
    const EXAMPLE: &'static str;
    /// The functions the documentation points to.
    const RELATED: &'static [&'static str] = &[];

    /// This function as DataFusion's.
    fn udf(self) -> ScalarUDF {
        StringFunction(self).udf()
    }

    /// Writes the result for `s` into `out` (empty, and reused from row to row); `false`
    /// makes the result NULL.
    fn apply(s: &str, out: &mut String) -> bool;
}

/// The [`Function`] of a [`StringFn`].
struct StringFunction<T>(T);

impl<T: StringFn> Function for StringFunction<T> {
    const NAME: &'static str = T::NAME;

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(T::NAME, &args.args[0], T::apply)
    }

    fn signature() -> Signature {
        one_string()
    }

    fn doc() -> Documentation {
        let syntax = format!("{}(str)", T::NAME);
        string_doc(T::SECTION, T::ABOUT, syntax, T::EXAMPLE, &[], T::RELATED)
    }
}

/// A test of a string, row by row: TRUE or FALSE, NULL for NULL. The string comes first;
/// constant parameters may follow it. Its documentation is made from the parts it states.
pub(crate) trait Validator: Send + Sync + Sized + 'static {
    /// The SQL name.
    const NAME: &'static str;
    /// What it tests: the documentation's description.
    const ABOUT: &'static str;
    /// The documentation's SQL example.
    const EXAMPLE: &'static str;
    /// The constant parameters after the string, named and described.
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[];
    /// The functions the documentation points to.
    const RELATED: &'static [&'static str] = &[];

    /// This function as DataFusion's.
    fn udf(self) -> ScalarUDF {
        ValidatorFunction(self).udf()
    }

    /// The test of one call, given all its arguments (only the parameters after the string
    /// are read); `None` when a parameter is NULL, which makes every row NULL.
    fn test(args: &[ColumnarValue]) -> Result<Option<impl Fn(&str) -> bool>>;

    /// The argument lists it accepts, and its volatility: by default one string, Immutable.
    fn signature() -> Signature {
        one_string()
    }

    /// How a call is written, for the documentation: by default `name(str)`.
    fn syntax() -> String {
        format!("{}(str)", Self::NAME)
    }
}

/// The [`Function`] of a [`Validator`].
struct ValidatorFunction<T>(T);

impl<T: Validator> Function for ValidatorFunction<T> {
    const NAME: &'static str = T::NAME;

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(test) = T::test(&args.args)? else {
            return kernel::all_null(&DataType::Boolean);
        };
        kernel::map_to::<_, BooleanBuilder>(T::NAME, &args.args[0], |s| Some(test(s)))
    }

    fn signature() -> Signature {
        T::signature()
    }

    fn return_type(_arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn doc() -> Documentation {
        let (about, example) = (T::ABOUT, T::EXAMPLE);
        string_doc(
            DOC_SECTION_OTHER,
            about,
            T::syntax(),
            example,
            T::PARAMETERS,
            T::RELATED,
        )
    }
}

/// A conversion of points from one coordinate system to another: `name(lon, lat)`, two
/// numbers in, a `struct<lon: double, lat: double>` out, NULL when either argument is NULL.
pub(crate) trait Transform: Send + Sync + Sized + 'static {
    /// The SQL name.
    const NAME: &'static str;
    /// What it does, the first sentences of its documentation.
    const ABOUT: &'static str;
    /// The documentation's example: the arguments of a call and the point it gives.
    const EXAMPLE: [&'static str; 2];

    /// This function as DataFusion's.
    fn udf(self) -> ScalarUDF {
        TransformFunction(self).udf()
    }

    /// Converts the points of one batch, by [`map_points`](coords::map_points) or
    /// [`map_point_pairs`](coords::map_point_pairs).
    fn convert(args: &[ColumnarValue]) -> Result<ColumnarValue>;
}

/// The [`Function`] of a [`Transform`].
struct TransformFunction<T>(T);

impl<T: Transform> Function for TransformFunction<T> {
    const NAME: &'static str = T::NAME;

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        T::convert(&args.args)
    }

    fn signature() -> Signature {
        coords::doubles(2)
    }

    fn return_type(_arg_types: &[DataType]) -> Result<DataType> {
        Ok(coords::point_type())
    }

    fn doc() -> Documentation {
        let name = T::NAME;
        let [call, point] = T::EXAMPLE;
        Documentation::builder(
            DOC_SECTION_OTHER,
            format!(
                "{} Returns struct<lon: double, lat: double>; NULL when either argument is NULL.",
                T::ABOUT
            ),
            format!("{name}(lon, lat)"),
        )
        .with_sql_example(format!(
            "```sql\n> SELECT {name}({call});\n-- {point}\n> SELECT get_field({name}(lon, lat), \
             'lon') AS lon, get_field({name}(lon, lat), 'lat') AS lat FROM stops;\n```"
        ))
        .with_argument("lon", "Longitude in degrees, east positive.")
        .with_argument("lat", "Latitude in degrees, north positive.")
        .build()
    }
}
