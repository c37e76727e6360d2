/**
 * How a picture is painted, independent of who is in it: the part of a style that acts on every shape.
 *
 * A `Look` recolours each paint by its role (a statue turns everything to stone, a zombie only the skin), may
 * add ink outlines (drawings, comics) and chooses soft photographic shading or flat colour. `Extras` are face
 * details that some styles add (wrinkles, zombie stitches, robot seams, blank statue eyes). `Defs` collects the
 * gradients and clip paths of one SVG document under unique ids.
 */
import { element, hex, type Rgb } from "./svg.js";

/** What a paint is for: styles recolour by role. */
export type PaintRole =
  | "skin" | "hair" | "brow" | "iris" | "sclera" | "pupil" | "lip" | "mouth" | "teeth" | "mark" | "clothing" | "line"
  | "accessory";

export interface Look {
  /** Recolours a paint (identity for photographs). */
  paint: (role: PaintRole, colour: Rgb) => Rgb;
  /** Ink outlines drawn around shapes, or none. */
  ink: { colour: Rgb; width: number } | null;
  /** "photo": soft gradients and shadows; "flat": single colours, as drawings and prints have. */
  shading: "photo" | "flat";
}

export interface Extras {
  /** Age lines 0–1 (forehead, crow's feet, nasolabial folds, eye bags). */
  wrinkles: number;
  /** Dark sockets, stitches, a torn lip. */
  zombie: boolean;
  /** Panel seams, rivets, glowing irises. */
  robot: boolean;
  /** Carved eyes: no pupil or coloured iris, only the shapes. */
  statue: boolean;
}

export const PHOTO_LOOK: Look = { paint: (_role, colour) => colour, ink: null, shading: "photo" };
export const NO_EXTRAS: Extras = { wrinkles: 0, zombie: false, robot: false, statue: false };

/** Definitions (<defs>) of one SVG document with unique ids. */
export class Defs {
  private readonly items: string[] = [];
  private counter = 0;

  /** Adds a definition built from a fresh id; returns that id. */
  add(prefix: string, build: (id: string) => string): string {
    const id = `${prefix}${this.counter++}`;
    this.items.push(build(id));
    return id;
  }

  /** A linear gradient between stops, along (x1, y1) → (x2, y2) in the shape's bounding box. */
  linear(stops: readonly (readonly [number, Rgb, number?])[], x1 = 0, y1 = 0, x2 = 0, y2 = 1): string {
    return this.add("l", (id) => element("linearGradient", { id, x1, y1, x2, y2 }, stopsText(stops)));
  }

  /** A radial gradient centred at (cx, cy) of the bounding box, radius r, focal point (fx, fy). */
  radial(stops: readonly (readonly [number, Rgb, number?])[], cx = 0.5, cy = 0.5, r = 0.5, fx = cx, fy = cy): string {
    return this.add("r", (id) => element("radialGradient", { id, cx, cy, r, fx, fy }, stopsText(stops)));
  }

  /** A clip path from SVG shapes (in user space). */
  clip(shapes: string): string {
    return this.add("c", (id) => element("clipPath", { id }, shapes));
  }

  /** Raw definition text (filters, patterns) under a fresh id. */
  raw(prefix: string, build: (id: string) => string): string {
    return this.add(prefix, build);
  }

  toString(): string {
    return this.items.length === 0 ? "" : `<defs>${this.items.join("")}</defs>`;
  }
}

function stopsText(stops: readonly (readonly [number, Rgb, number?])[]): string {
  return stops
    .map(([offset, colour, opacity]) => element("stop", { offset, "stop-color": hex(colour), "stop-opacity": opacity }))
    .join("");
}
