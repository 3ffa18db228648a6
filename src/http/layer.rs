//! One shape for the app's own middlewares: a layer is the value it needs ([`Wrap`]), and its
//! service is that value beside the inner service ([`Wrapped`]). Each middleware then writes only
//! its `Service` impl for `Wrapped<S, ItsValue>`, with a future of its own where it must not box.

use tower::Layer;

/// A layer that hands `T` to the service it makes.
#[derive(Clone)]
pub struct Wrap<T>(pub T);

impl<S, T: Clone> Layer<S> for Wrap<T> {
    type Service = Wrapped<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped {
            inner,
            with: self.0.clone(),
        }
    }
}

/// The inner service, and the value of the layer that wrapped it.
#[derive(Clone)]
pub struct Wrapped<S, T> {
    pub inner: S,
    pub with: T,
}
