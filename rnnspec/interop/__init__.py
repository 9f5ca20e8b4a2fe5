"""Foreign model formats, read and mapped without any framework: the file layer under the keras backend
and the runtime's import and export.

* :mod:`.keras_files` reads a Keras ``.keras`` or ``.h5`` file (zip, JSON and HDF5, no Keras);
  :mod:`.keras_import` maps its layers to a spec and canonical weights;
* :mod:`.torch_import` matches a PyTorch state dict to a spec;
* :mod:`.live_models` reads the weights of a live Keras model or ``torch.nn.Module`` through its own methods;
* :mod:`.formats` tells which kind of model file a path holds; :mod:`.renaming` puts imported weights under
  the layer names of the spec that describes them; :mod:`.errors` holds :class:`ImportError_`;
* :mod:`.proof` makes the hard inputs on which two implementations are compared.

The operations that drive backends live above this layer, in the runtime (its ``importing`` and
``exporting`` modules): :func:`rnnspec.import_model`, ``write_import`` and :func:`rnnspec.export`. Nothing
here imports the runtime.
"""

from rnnspec.interop.errors import ImportError_
from rnnspec.interop.formats import model_format
from rnnspec.interop.live_models import weights_from_model
from rnnspec.interop.renaming import rename_weights

__all__ = ["ImportError_", "model_format", "rename_weights", "weights_from_model"]
