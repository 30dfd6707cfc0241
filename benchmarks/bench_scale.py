"""Whole flight lines: map realistic large ENVI scenes from disk, at 1/4, 1/2 and full length.

    python benchmarks/bench_scale.py --scene enmap  --dir /big/tmp      # 1200 x 1200 x 224 (0.6 GB int16)
    python benchmarks/bench_scale.py --scene aviris --dir /big/tmp      # 640 x 8000 x 425 BIL (4.4 GB int16)
    python benchmarks/bench_scale.py --scene enmap --lines 300 --dir /tmp/x   # a quick smoke run
    python benchmarks/bench_scale.py --formats --scene enmap --lines 4000 --dir /big/tmp   # 2.15 GB products

The scene is written as an int16 ENVI BIL image with map info: Indian Pines spectra, linearly resampled
from 200 bands to the sensor's band count, tiled (mirrored) over the scene, with the ground truth tiled the same
way. A short run (1 epoch) is trained on a labelled 145 x 145 crop, then ``hsi predict`` maps the first 1/4,
1/2 and all lines of the scene, each in its own process, printing wall time, pixels/s and that process's peak
RSS. Acceptance (issue 17): peak RSS <= 2 GB for the AVIRIS-NG-like scene, full / quarter time 3.5x - 4.5x.
The files are deleted afterwards unless ``--keep``.

``--formats`` (issue 31, needs the ``geo`` extra) writes the same scene also as an EnMAP-style GeoTIFF (int16,
tiled 256 x 256, pixel-interleaved), an EMIT-style NetCDF-4 (``reflectance (downtrack, crosstrack, bands)`` int16)
and a PRISMA-style HE5 (``VNIR_Cube``/``SWIR_Cube`` (lines, bands, samples) uint16, scale 1), then, each in its own
process: reads every product in blocks of 256 whole lines through ``hsi.load_scene`` (best of two reads in a row,
printed as a ratio to the ENVI read of the same run; acceptance: <= 2x), and maps every product with ``hsi predict
--memory-mb`` (peak RSS against the budget and against the product's size on disk).
"""
import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCENES = {"enmap": (1200, 1200, 224), "aviris": (8000, 640, 425)}     # lines, samples, bands
MAP_INFO = "UTM, 1.000, 1.000, 523000.000, 4481000.000, 3.0000000000e+01, 3.0000000000e+01, 16, North, " \
           "WGS-84, units=Meters"


def peak_rss_mb():
    """This process's peak resident set (VmHWM: its own, unlike ru_maxrss, which keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resampled_indian_pines(bands):
    import hsi

    scene = hsi.load_scene("indian_pines")
    position = np.linspace(0, scene.bands - 1, bands)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, scene.bands - 1)
    frac = (position - low).astype(np.float32)
    cube = scene.cube[:, :, low] * (1 - frac) + scene.cube[:, :, high] * frac
    labels = np.where(scene.labels >= 0, scene.label_ids[np.maximum(scene.labels, 0)], 0)
    return np.round(cube).astype(np.int16), labels.astype(np.uint8)


def mirrored(index, size):
    """Indices 0..n-1 of a length-``size`` mirrored tiling (0 1 .. size-1 size-1 .. 0 0 1 ..)."""
    period = index % (2 * size)
    return np.where(period < size, period, 2 * size - 1 - period)


def header(lines, samples, bands):
    return (f"ENVI\ndescription = {{hsi bench_scale: resampled, tiled Indian Pines}}\nsamples = {samples}\n"
            f"lines = {lines}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 2\n"
            f"interleave = bil\nbyte order = 0\nmap info = {{{MAP_INFO}}}\n")


def build(folder, lines, samples, bands):
    """The line ``scene.hdr/.img`` (Indian Pines resampled to ``bands``, mirrored to ``lines`` x ``samples``) and
    the crop it was tiled from (``crop.npy``, ``crop_gt.npy``); returns the crop's labels."""
    cube, labels = resampled_indian_pines(bands)
    cols = mirrored(np.arange(samples), cube.shape[1])
    with open(folder / "scene.img", "wb") as f:
        for start in range(0, lines, 256):
            rows = mirrored(np.arange(start, min(start + 256, lines)), cube.shape[0])
            f.write(np.ascontiguousarray(cube[rows][:, cols].transpose(0, 2, 1)).astype("<i2").tobytes())
    (folder / "scene.hdr").write_text(header(lines, samples, bands))
    np.save(folder / "crop.npy", cube)
    np.save(folder / "crop_gt.npy", labels)
    return labels


def map_one(run, hdr, out, memory_mb=1024, fmt="envi"):
    import torch  # noqa: F401  (imported before the baseline, as hsi predict imports it)

    from hsi.cli import main

    baseline = peak_rss_mb()
    start = time.perf_counter()
    code = main(["predict", str(run), "--cube", str(hdr), "--format", fmt, "--out", str(out), "-q",
                 "--memory-mb", str(memory_mb)])
    seconds = time.perf_counter() - start
    print(json.dumps({"code": code, "seconds": seconds, "rss_mb": peak_rss_mb(), "baseline_mb": baseline}))


def write_products(folder, lines, samples, bands):
    """The ENVI scene as GeoTIFF, NetCDF and HE5 copies, written a block of lines at a time; their paths."""
    import h5netcdf
    import h5py
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    bil = np.memmap(folder / "scene.img", dtype="<i2", mode="r", shape=(lines, bands, samples))
    wavelengths = np.linspace(420.0, 2450.0, bands)
    vnir = bands * 3 // 10
    paths = {"geotiff": folder / "scene.tif", "netcdf": folder / "scene.nc", "he5": folder / "scene.he5"}
    with rasterio.open(paths["geotiff"], "w", driver="GTiff", width=samples, height=lines, count=bands,
                       dtype="int16", crs="EPSG:32616", transform=Affine(30, 0, 523000, 0, -30, 4481000),
                       tiled=True, blockxsize=256, blockysize=256, interleave="pixel", BIGTIFF="IF_SAFER") as tif, \
            h5netcdf.File(paths["netcdf"], "w") as nc, h5py.File(paths["he5"], "w") as he5:
        nc.dimensions = {"downtrack": lines, "crosstrack": samples, "bands": bands}
        reflectance = nc.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), "i2")
        nc.create_group("sensor_band_parameters").create_variable("wavelengths", ("bands",), "f4")[...] = wavelengths
        he5.attrs["List_Cw_Vnir"], he5.attrs["List_Cw_Swir"] = wavelengths[:vnir], wavelengths[vnir:]
        for part in ("Vnir", "Swir"):
            he5.attrs[f"L2Scale{part}Min"], he5.attrs[f"L2Scale{part}Max"] = 0.0, 65535.0
        fields = he5.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        cubes = (fields.create_dataset("VNIR_Cube", (lines, vnir, samples), "u2"),
                 fields.create_dataset("SWIR_Cube", (lines, bands - vnir, samples), "u2"))
        for r0 in range(0, lines, 256):
            block = np.asarray(bil[r0:r0 + 256])                     # (lines, bands, samples)
            n = len(block)
            tif.write(block.transpose(1, 0, 2), window=Window(0, r0, samples, n))
            reflectance[r0:r0 + n] = block.transpose(0, 2, 1)
            cubes[0][r0:r0 + n], cubes[1][r0:r0 + n] = block[:, :vnir], block[:, vnir:]
    return paths


def read_one(path):
    """Read every pixel of ``path`` through hsi.load_scene in blocks of 256 whole lines."""
    import hsi

    start = time.perf_counter()
    cube = hsi.load_scene(path).cube
    total = 0.0
    for r0 in range(0, cube.shape[0], 256):
        total += float(np.asarray(cube[r0:r0 + 256], dtype=np.float32).sum(dtype=np.float64))
    print(json.dumps({"seconds": time.perf_counter() - start, "checksum": total, "rss_mb": peak_rss_mb()}))


def formats(folder, lines, samples, bands, memory_mb, reuse=False, read_only=False):
    """Read and map the ENVI scene and its GeoTIFF, NetCDF and HE5 copies, each in its own process."""
    start = time.perf_counter()
    products = {"geotiff": folder / "scene.tif", "netcdf": folder / "scene.nc", "he5": folder / "scene.he5"}
    if not (reuse and all(p.is_file() for p in products.values())):
        products = write_products(folder, lines, samples, bands)
    paths = {"envi": folder / "scene.hdr", **products}
    sizes = {k: (p.with_suffix(".img") if k == "envi" else p).stat().st_size for k, p in paths.items()}
    print(f"wrote the GeoTIFF, NetCDF and HE5 copies in {time.perf_counter() - start:.0f} s; on disk: "
          + ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in sizes.items()))

    def child(*args):
        done = subprocess.run([sys.executable, __file__, "--dir", str(folder), *args], check=True,
                              capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    reads = {name: [child("--read-one", str(path)) for _ in range(2)] for name, path in paths.items()}
    sums = {name: r[0]["checksum"] for name, r in reads.items()}
    if len(set(sums.values())) != 1:
        raise SystemExit(f"the products read differently: checksums {sums}")
    best = {name: min(r["seconds"] for r in rs) for name, rs in reads.items()}
    print(f"\nread {lines} x {samples} x {bands} in blocks of 256 lines (best of 2 in a row, so from the page "
          f"cache when the file fits; same checksum in every format)")
    print("| product | on disk | read time | MB/s (of the ENVI size) | / ENVI | peak RSS |")
    print("|---|---|---|---|---|---|")
    for name in paths:
        print(f"| {name} | {sizes[name] / 1e9:.2f} GB | {best[name]:.1f} s | {sizes['envi'] / 1e6 / best[name]:.0f} "
              f"| {best[name] / best['envi']:.2f}x | {max(r['rss_mb'] for r in reads[name]):.0f} MB |")
    if read_only:
        return
    print(f"\nhsi predict --format npy --memory-mb {memory_mb}, each product in its own process")
    print("| product | wall time | pixels/s | peak RSS | of which the mapping (peak - imports) | / budget | "
          "peak RSS / size on disk |")
    print("|---|---|---|---|---|---|---|")
    maps = {}
    for name, path in paths.items():
        result = child("--map-one", str(folder / "run"), str(path), str(folder / f"map-{name}"),
                       "--memory-mb", str(memory_mb), "--map-format", "npy")
        maps[name] = np.load(folder / f"map-{name}.npy", mmap_mode="r")
        mapping = result["rss_mb"] - result["baseline_mb"]
        print(f"| {name} | {result['seconds']:.1f} s | {lines * samples / result['seconds']:,.0f} | "
              f"{result['rss_mb']:.0f} MB | {mapping:.0f} MB | {mapping / memory_mb:.2f} | "
              f"{result['rss_mb'] * 2**20 / sizes[name]:.2f} |")
    same = all(np.array_equal(maps["envi"], m) for m in maps.values())
    print(f"every product's map equals the ENVI one: {same}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=SCENES, default="enmap")
    parser.add_argument("--dir", required=True, help="folder for the scene files (needs the scene's size free)")
    parser.add_argument("--lines", type=int, help="fewer lines than the sensor's scene (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--reuse", action="store_true", help="use the scene files a --keep run left, if there")
    parser.add_argument("--formats", action="store_true",
                        help="also write GeoTIFF, NetCDF and HE5 copies; compare reading and mapping them")
    parser.add_argument("--memory-mb", type=int, default=1024, help="hsi predict's budget (default 1024)")
    parser.add_argument("--read-only", action="store_true", help="with --formats: compare the reads, map nothing")
    parser.add_argument("--model", default="hybridsn", help="the short run's model (default hybridsn)")
    parser.add_argument("--map-one", nargs=3, metavar=("RUN", "HDR", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--map-format", default="envi", help=argparse.SUPPRESS)
    parser.add_argument("--read-one", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.map_one:
        return map_one(*args.map_one, args.memory_mb, args.map_format)
    if args.read_one:
        return read_one(args.read_one)
    lines, samples, bands = SCENES[args.scene]
    lines = args.lines or lines
    folder = Path(args.dir) / f"hsi-bench-scale-{args.scene}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        if not (args.reuse and (folder / "scene.img").is_file() and (folder / "crop.npy").is_file()):
            build(folder, lines, samples, bands)
        size = (folder / "scene.img").stat().st_size
        print(f"{args.scene}: {samples} samples x {lines} lines x {bands} bands int16 BIL, {size / 2**30:.2f} GB, "
              f"written in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        if not (args.reuse and (folder / "run" / "best.pt").is_file()):
            subprocess.run([sys.executable, "-m", "hsi.cli", "train", "--cube", str(folder / "crop.npy"), "--gt",
                            str(folder / "crop_gt.npy"), "--model", args.model, "--epochs", "1", "--train-ratio",
                            "0.1", "--no-map", "-q", "--out", str(folder / "run")], check=True)
        print(f"trained {args.model} 1 epoch on the 145 x 145 crop in {time.perf_counter() - start:.0f} s")
        if args.formats:
            return formats(folder, lines, samples, bands, args.memory_mb, args.reuse, args.read_only)
        results = {}
        for fraction in (0.25, 0.5, 1.0):
            part = round(lines * fraction)
            hdr = folder / f"part-{part}.hdr"
            hdr.write_text(header(part, samples, bands))
            hdr.with_suffix(".img").symlink_to(folder / "scene.img")
            done = subprocess.run([sys.executable, __file__, "--dir", args.dir, "--map-one", str(folder / "run"),
                                   str(hdr), str(folder / f"map-{part}")], check=True, capture_output=True,
                                  text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[fraction] = result
            pixels = part * samples
            print(f"{fraction:>5.2f} length: {part:>5} lines  {pixels / 1e6:6.2f} Mpixels  "
                  f"{result['seconds']:8.1f} s  {pixels / result['seconds']:8,.0f} pixels/s  "
                  f"peak RSS {result['rss_mb']:6.0f} MB")
        print(f"full / quarter time: {results[1.0]['seconds'] / results[0.25]['seconds']:.2f}x (linear: 4x)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
