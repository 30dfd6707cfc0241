"""Small products in their published layouts, written with the real libraries (shared by the GIS tests)."""
import h5netcdf
import numpy as np
from pyproj import CRS

#: an EMIT-style map grid: 0.001 degree cells from 10.000 E, 45.000 N (GDAL geotransform order)
GLT_GEOTRANSFORM = (10.0, 0.001, 0.0, 45.0, 0.0, -0.001)


def random_glt(sensor_shape, grid_shape, seed=0, empty=0.15):
    """1-based (glt_y, glt_x) of the map grid's cells, each naming a random sensor pixel; 0 (no pixel) in about
    ``empty`` of the cells, as at a swath's edges."""
    rng = np.random.default_rng(seed)
    glt_y = rng.integers(1, sensor_shape[0] + 1, grid_shape)
    glt_x = rng.integers(1, sensor_shape[1] + 1, grid_shape)
    hole = rng.random(grid_shape) < empty
    glt_y[hole], glt_x[hole] = 0, 0
    return glt_y.astype(np.int32), glt_x.astype(np.int32)


def write_emit(path, reflectance, glt_y, glt_x, geotransform=GLT_GEOTRANSFORM):
    """An EMIT L2A-style NetCDF-4: reflectance (downtrack, crosstrack, bands), its band parameters, and the
    location group's lat/lon and GLT on the map grid ``geotransform`` (GDAL order) in EPSG:4326."""
    rows, cols, bands = reflectance.shape
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": rows, "crosstrack": cols, "bands": bands, "ortho_y": glt_y.shape[0],
                        "ortho_x": glt_y.shape[1]}
        f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), "f4",
                          fillvalue=-9999.0)[...] = reflectance
        f.attrs["geotransform"] = np.array(geotransform, dtype=np.float64)
        f.attrs["spatial_ref"] = CRS.from_epsg(4326).to_wkt()
        group = f.create_group("sensor_band_parameters")
        group.create_variable("wavelengths", ("bands",), "f4")[...] = 400 + 50 * np.arange(bands)
        group.create_variable("fwhm", ("bands",), "f4")[...] = np.full(bands, 8.5)
        group.create_variable("good_wavelengths", ("bands",), "u1")[...] = np.ones(bands, np.uint8)
        loc = f.create_group("location")
        down, cross = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        loc.create_variable("lat", ("downtrack", "crosstrack"), "f8")[...] = 45 - 0.001 * (down + 0.5)
        loc.create_variable("lon", ("downtrack", "crosstrack"), "f8")[...] = 10 + 0.001 * (cross + 0.5)
        loc.create_variable("glt_x", ("ortho_y", "ortho_x"), "i4")[...] = glt_x
        loc.create_variable("glt_y", ("ortho_y", "ortho_x"), "i4")[...] = glt_y
    return path


def cell_centres(shape, geotransform=GLT_GEOTRANSFORM):
    """x, y of the centre of every cell of a (rows, cols) grid with a GDAL-order geotransform."""
    x0, dx, rx, y0, ry, dy = geotransform
    cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
    return x0 + dx * cols + rx * rows, y0 + ry * cols + dy * rows
