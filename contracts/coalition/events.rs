//! The coalition's events as ink! events, from the one declaration in
//! `coalition_types::coalition_events!` (the client decodes the same declaration).

/// Makes each declared event an ink! event, its `[topic]` fields `#[ink(topic)]`.
macro_rules! ink_events {
    ($(
        $(#[doc = $doc:expr])*
        $name:ident {
            $( $(#[doc = $field_doc:expr])* $field:ident : $ty:ty $([$topic:ident])? ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[ink::event]
            pub struct $name {
                $( $(#[doc = $field_doc])* $(#[ink($topic)])? pub $field: $ty, )*
            }
        )*
    };
}

coalition_types::coalition_events!(ink_events);
