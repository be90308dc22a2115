//! The chainable setters of the configuration types, written once.

/// Writes chainable setters for the named fields of a configuration
/// struct, inside its `impl` block: `name: Type` gives
/// `pub fn name(mut self, value: Type) -> Self`, and `name: into Type`
/// gives one that takes `impl Into<Type>` (for `Option` fields, so both
/// `.deadline(d)` and `.deadline(None)` read well), and `name: shared
/// Trait` one that takes `impl Trait` and stores it in an `Arc` (the
/// injected clock and random source). Each entry carries its own doc
/// comment and example.
///
/// ```
/// #[derive(Debug, Default)]
/// #[non_exhaustive]
/// pub struct Limits {
///     /// Bytes at most.
///     pub max_bytes: u64,
///     /// How long to wait, if at all.
///     pub wait: Option<std::time::Duration>,
/// }
///
/// impl Limits {
///     buttress_core::setters! {
///         /// Sets `max_bytes`.
///         max_bytes: u64,
///         /// Sets `wait`.
///         wait: into Option<std::time::Duration>,
///     }
/// }
///
/// let l = Limits::default().max_bytes(10).wait(std::time::Duration::from_secs(1));
/// assert_eq!((l.max_bytes, l.wait.is_some()), (10, true));
/// assert_eq!(l.wait(None).wait, None);
/// ```
#[macro_export]
macro_rules! setters {
    () => {};
    ($(#[$doc:meta])* $name:ident : shared $tr:path $(, $($rest:tt)*)?) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: impl $tr) -> Self {
            self.$name = ::std::sync::Arc::new(value);
            self
        }
        $($crate::setters! { $($rest)* })?
    };
    ($(#[$doc:meta])* $name:ident : into $t:ty $(, $($rest:tt)*)?) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: impl Into<$t>) -> Self {
            self.$name = value.into();
            self
        }
        $($crate::setters! { $($rest)* })?
    };
    ($(#[$doc:meta])* $name:ident : $t:ty $(, $($rest:tt)*)?) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $t) -> Self {
            self.$name = value;
            self
        }
        $($crate::setters! { $($rest)* })?
    };
}
