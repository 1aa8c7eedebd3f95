//! [`Stored`]: a value of `coalition-types` kept in one storage cell.
//!
//! ink! wants every stored type to describe its storage layout (`StorageLayout`, for the
//! metadata), and its derive lives in ink!, which `coalition-types` does not depend on (ink!'s
//! dependency tree would change the node's, see that crate's docs). `Stored<T>` encodes exactly
//! as `T` and describes itself as one leaf of `T`'s type, which is what a packed value is.

use ink::scale::{Decode, Encode, Error, Input, Output};

/// `T` in one storage cell, encoded exactly as `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T>(pub T);

impl<T: Encode> Encode for Stored<T> {
    fn size_hint(&self) -> usize {
        self.0.size_hint()
    }

    fn encode_to<O: Output + ?Sized>(&self, dest: &mut O) {
        self.0.encode_to(dest)
    }
}

impl<T: Encode> ink::scale::EncodeLike for Stored<T> {}

impl<T: Decode> Decode for Stored<T> {
    fn decode<I: Input>(input: &mut I) -> Result<Self, Error> {
        T::decode(input).map(Stored)
    }
}

#[cfg(feature = "std")]
impl<T: ink::scale_info::TypeInfo + 'static> ink::scale_info::TypeInfo for Stored<T> {
    type Identity = T;

    fn type_info() -> ink::scale_info::Type {
        T::type_info()
    }
}

#[cfg(feature = "std")]
impl<T: ink::scale_info::TypeInfo + Encode + Decode + 'static> ink::storage::traits::StorageLayout for Stored<T> {
    fn layout(key: &ink::primitives::Key) -> ink::metadata::layout::Layout {
        use ink::metadata::layout::{Layout, LayoutKey, LeafLayout};
        Layout::Leaf(LeafLayout::from_key::<T>(LayoutKey::from(key)))
    }
}
