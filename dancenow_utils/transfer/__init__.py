"""Step 4: pose transfer into videos (``pose_transfer``) and the pose puppet (``puppet``).

``dancenow_utils.transfer`` was one module before; its names still resolve from ``pose_transfer`` for one release."""

from dancenow_utils import moved_attributes

__getattr__ = moved_attributes(__name__, "dancenow_utils.transfer.pose_transfer")
