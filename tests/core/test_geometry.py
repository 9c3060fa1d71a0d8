"""Geometry on coordinates, without a database: great-circle distance and point in polygon."""

import pytest

from wastetrack.core.geometry import distance_m, point_in_polygon

# A square of about 1.1 km around Shidao harbour, as (longitude, latitude) pairs.
SQUARE = [[122.42, 36.88], [122.43, 36.88], [122.43, 36.89], [122.42, 36.89]]


def test_distance_is_zero_to_itself_and_symmetric() -> None:
    assert distance_m(36.893, 122.428, 36.893, 122.428) == 0
    there = distance_m(36.893, 122.428, 37.1, 122.428)
    assert there == pytest.approx(distance_m(37.1, 122.428, 36.893, 122.428))


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert distance_m(36.0, 122.0, 37.0, 122.0) == pytest.approx(111_195, rel=1e-3)


@pytest.mark.parametrize(
    ("lon", "lat", "inside"),
    [
        (122.425, 36.885, True),
        (122.435, 36.885, False),  # east of the square
        (122.425, 36.895, False),  # north of it
        (122.41, 36.87, False),
    ],
)
def test_point_in_polygon_by_the_even_odd_rule(lon: float, lat: float, inside: bool) -> None:
    assert point_in_polygon(lon, lat, SQUARE) is inside


def test_a_point_in_a_concave_polygons_notch_is_outside() -> None:
    # A U shape: the notch between its arms is outside.
    u_shape = [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]]
    assert point_in_polygon(1.5, 2.0, u_shape) is False
    assert point_in_polygon(0.5, 2.0, u_shape) is True
