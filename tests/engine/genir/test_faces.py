"""The face filter finds the face in scikit-image's astronaut and none in a landscape."""

from __future__ import annotations

from genir_runs import DATA, astronaut
from PIL import Image

from engine.genir.faces import FaceDetector, merge_overlapping


def test_finds_the_astronauts_face_where_it_is():
    image = astronaut(512)
    boxes = FaceDetector().detect(image)
    assert len(boxes) == 1, boxes
    box = boxes[0]
    # Eileen Collins' face: roughly x 180..290, y 60..170 in the 512 px photo.
    assert 140 < box.left + box.width / 2 < 260 and 80 < box.top + box.height / 2 < 160


def test_finds_it_at_other_sizes_and_mirrored():
    detector = FaceDetector()
    assert detector.count(astronaut(1024)) >= 1
    assert detector.count(astronaut(256)) >= 1
    assert detector.count(astronaut(512).transpose(Image.Transpose.FLIP_LEFT_RIGHT)) >= 1


def test_finds_no_face_in_a_landscape():
    with Image.open(DATA / "picosdeeuropa.jpg") as image:
        assert FaceDetector().count(image) == 0


def test_overlapping_boxes_count_once():
    boxes = [(10, 10, 40, 40), (14, 12, 36, 38), (100, 100, 20, 20)]
    merged = merge_overlapping(boxes, share=0.3)
    assert len(merged) == 2
    assert (10, 10, 40, 40) in merged


def test_the_cascades_are_a_setting():
    from engine.genir.faces import CASCADES

    fewer = FaceDetector(cascades=CASCADES[1:])
    assert fewer.count(astronaut(512)) == 1
    assert "default" not in fewer.settings()["cascades"]
